"""Architectures: exact parameter counts, embed/forward contract, MNIST-size inputs, bad args."""
import pytest
import torch
from torch import nn

from kdlib.blocks.models import MODELS, build_model, count_parameters

# Counts of the paper's architectures at 3x32x32 with 10 classes, from kd-conventions.md and
# re-derived by hand for lenet: conv 3*6*25+6=456, conv 6*16*25+16=2416, fc 400*120+120=48120,
# 120*84+84=10164, 84*10+10=850 -> 62006.
EXPECTED = {"resnet18": 11_173_962, "lenet": 62_006, "alexnet": 14_859_082}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_match_the_paper(name):
    assert count_parameters(build_model(name)) == EXPECTED[name]


def test_lenet_count_by_hand():
    assert 456 + 2416 + 48120 + 10164 + 850 == EXPECTED["lenet"]


@pytest.mark.parametrize("name,dim", [("resnet18", 512), ("lenet", 84), ("alexnet", 2048)])
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_forward_is_classifier_of_embed(name, dim, shape):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=shape[0], image_size=shape[1]).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        e = model.embed(x)
        out = model(x)
    assert e.shape == (3, dim)
    assert out.shape == (3, 7)
    torch.testing.assert_close(out, model.classifier(e))
    assert isinstance(model.classifier, nn.Linear) and model.classifier.in_features == dim


def test_alexnet_classifier_input_sized_from_image_size():
    # 32x32 -> 4x4x256 = 4096 features; 28x28 -> 3x3x256 = 2304 (the paper code's MNIST size)
    assert build_model("alexnet").head[1].in_features == 4096
    assert build_model("alexnet", in_channels=1, image_size=28).head[1].in_features == 2304
    assert build_model("lenet", in_channels=1, image_size=28).head[0].in_features == 16 * 4 * 4


def test_narrow_resnet_keeps_topology():
    wide, narrow = build_model("resnet18"), build_model("resnet18", width=16)
    assert narrow.embed_dim == 128
    assert len(list(narrow.modules())) == len(list(wide.modules()))
    assert count_parameters(narrow) < count_parameters(wide) / 10


def test_narrow_alexnet_scales_convs_and_fc():
    narrow = build_model("alexnet", width=16, in_channels=1, image_size=28)
    assert narrow.embed_dim == 512 and narrow.head[1].in_features == 64 * 3 * 3
    assert [m.out_channels for m in narrow.features if isinstance(m, nn.Conv2d)] == [16, 48, 96, 64, 64]


def test_resnet_stem_is_cifar_variant():
    m = build_model("resnet18")
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.modules())
    assert [len(layer) for layer in (m.layer1, m.layer2, m.layer3, m.layer4)] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"name": "vgg"}, "unknown model 'vgg'"),
        ({"name": "lenet", "num_classes": 0}, "num_classes"),
        ({"name": "lenet", "image_size": 8}, "image_size"),
        ({"name": "lenet", "width": 8}, "width"),
        ({"name": "resnet18", "width": -1}, "width"),
        ({"name": "alexnet", "dropout": 1.5}, "dropout"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        build_model(**kwargs)


def test_unknown_model_error_lists_known_ones():
    with pytest.raises(ValueError) as err:
        build_model("resnet50")
    for name in MODELS:
        assert name in str(err.value)
