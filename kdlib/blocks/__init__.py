"""The building blocks of the paper: models, augmentation mixers and their spec, the distillation loss,
metrics, calibration and the predictors of a student's gain."""
