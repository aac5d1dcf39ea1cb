"""``ClassifierModule``: one description of the network (its layer list) and one metrics path."""

from __future__ import annotations

import torch

from cnnzoo.models import layer_configs, specs
from cnnzoo.training.checkpoints import load_classifier
from cnnzoo.training.module import ClassifierModule
from tests.conftest import save_checkpoint


def test_top5_stays_apart_from_accuracy_when_the_first_batch_is_all_correct():
    module = ClassifierModule("mnist_mlp", 24, [1, 28, 28])
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(labels, 24).float()
    module.test_counts.update(logits, labels)  # all correct: accuracy and top-5 agree here
    second_best = logits.clone()
    second_best[:, 23] = 2.0  # class 23 first, the true class second: wrong, but within the top 5
    module.test_counts.update(second_best, labels)
    values = module.test_counts.compute()
    assert values["accuracy"].item() == 0.5 and values["top5"].item() == 1.0
    assert values["confusion_matrix"][:4, 23].tolist() == [1, 1, 1, 1]


def test_a_registered_architecture_is_stored_as_its_layer_list(tmp_path):
    module = ClassifierModule("asl_cnn", 5, [1, 12, 12])
    assert module.hparams.layers == layer_configs(specs("asl_cnn", 5))
    checkpoint = torch.load(save_checkpoint(module, tmp_path / "a.ckpt"), weights_only=False)
    checkpoint["hyper_parameters"]["arch"] = "renamed"  # the list, not the name, rebuilds it
    torch.save(checkpoint, tmp_path / "b.ckpt")
    restored = load_classifier(tmp_path / "b.ckpt")
    assert restored.net.specs == module.net.specs and restored.net.name == "renamed"
    for name, tensor in module.net.state_dict().items():
        assert torch.equal(restored.net.state_dict()[name], tensor), name
