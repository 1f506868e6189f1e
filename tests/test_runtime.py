"""mdfloss.runtime: the one device resolution and the scoped thread count."""

from __future__ import annotations

import pytest
import torch

from mdfloss.runtime import resolve_device, scoped_threads


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^--device: 'cuda:1' asked for, but CUDA is not available"):
        resolve_device("cuda:1", "--device")


def test_cuda_takes_the_local_rank_when_no_index_is_given(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", local_rank=2) == torch.device("cuda:2")
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert resolve_device("cuda:3", local_rank=1) == torch.device("cuda:3")
    assert resolve_device(torch.device("cuda:0")) == torch.device("cuda:0")


@pytest.mark.parametrize("choice", ["gpu", "cuda:x", "mps", ""])
def test_anything_else_is_refused_naming_the_argument(choice):
    with pytest.raises(ValueError, match=rf"^train\.device: expected auto, cpu, cuda or cuda:K, got {choice!r}"):
        resolve_device(choice, "train.device")


def test_scoped_threads_restores_the_count_and_checks_it():
    before = torch.get_num_threads()
    with scoped_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with scoped_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=r"^train\.threads: expected"):
        with scoped_threads(0, "train.threads"):
            pass
