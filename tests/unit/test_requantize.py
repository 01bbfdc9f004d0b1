"""worker.models.requantize: llama.cpp's own quantizer, as the substitute-model tests and eval use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.models import embedded_gguf_path, requantize, sha256_file


def test_requantize_writes_a_smaller_different_gguf_that_llama_cpp_loads(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from llama_cpp import Llama

    src = embedded_gguf_path()
    out = requantize(src, tmp_path / "q2k.gguf", "Q2_K", threads=2)
    assert "llama_model_quantize" not in capfd.readouterr().err  # quiet: llama.cpp's per-tensor log is dropped
    assert out == tmp_path / "q2k.gguf" and out.read_bytes()[:4] == b"GGUF"
    assert not (tmp_path / "q2k.gguf.tmp").exists()
    assert out.stat().st_size < src.stat().st_size and sha256_file(out) != sha256_file(src)
    # the same input and type give the same bytes (the fidelity eval's substitute is reproducible)
    again = requantize(src, tmp_path / "again.gguf", "q2_k", threads=1, quiet=False)
    assert sha256_file(again) == sha256_file(out)
    assert "llama_model_quantize" in capfd.readouterr().err
    llm = Llama(str(out), n_ctx=64, n_threads=1, verbose=False)
    try:
        assert llm.n_vocab() > 1000
    finally:
        llm.close()


def test_requantize_names_the_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown quantization type 'Q9_X'.*Q2_K"):
        requantize(embedded_gguf_path(), tmp_path / "x.gguf", "Q9_X")
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        requantize(tmp_path / "missing.gguf", tmp_path / "x.gguf", "Q2_K")
    (tmp_path / "junk.gguf").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="could not requantize"):
        requantize(tmp_path / "junk.gguf", tmp_path / "x.gguf", "Q2_K")
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.gguf.tmp").exists()
