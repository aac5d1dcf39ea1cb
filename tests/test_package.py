"""``import cnnzoo`` is cheap and gives the public names lazily."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_import_cnnzoo_imports_neither_torch_nor_lightning_until_a_name_is_used():
    code = ("import sys, cnnzoo; before = {'torch', 'lightning'} & set(sys.modules); "
            "n = cnnzoo.create('mnist_mlp').num_classes; "
            "print(sorted(before), n, 'lightning' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "10", "False"]


def test_unknown_names_are_attribute_errors():
    import cnnzoo

    assert cnnzoo.recipe("asl_cnn").arch == "asl_cnn"
    try:
        cnnzoo.fit_everything  # noqa: B018
    except AttributeError as e:
        assert "fit_everything" in str(e)
    else:
        raise AssertionError("expected an AttributeError")
