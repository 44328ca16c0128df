"""`byzsim data download`: torchvision's own downloaders, against a local HTTP server on 127.0.0.1.

The server serves tiny files in the real formats (gzipped IDX files, CIFAR tarballs of pickles); the
test points torchvision's mirror lists and checksums at them, downloads through the CLI's function,
and reads the result back with byzsim's readers.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading

import numpy as np
import pytest
import torchvision.datasets as tvd

from experiments import datasets
from experiments.tools import UserException
from simulator.cli.data import download
from simulator.cli.main import main
from simulator.core.config import Config


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _idx(array: np.ndarray) -> bytes:
    code = 0x08  # uint8
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.mark.parametrize("name, cls", [("mnist", tvd.MNIST), ("fashionmnist", tvd.FashionMNIST)])
def test_idx_datasets_download_from_the_mirror_list(server, tmp_path, monkeypatch, name, cls):
    www, url = server
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (6, 28, 28))),
             "train-labels-idx1-ubyte.gz": _idx(np.arange(6) % 10),
             "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (4, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": _idx(np.arange(4) % 10)}
    for file, data in files.items():
        (www / file).write_bytes(data)
    monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/", url])  # the first mirror refuses: the next is tried
    monkeypatch.setattr(cls, "resources", [(file, _md5(data)) for file, data in files.items()])
    root = tmp_path / "data"
    assert download(name, root) == root
    images, labels = datasets.load_tensors(name, True, root)
    assert images.shape == (6, 1, 28, 28) and labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert datasets.load_tensors(name, False, root)[0].shape == (4, 1, 28, 28)


def _cifar_tarball(folder: str, train: list[str], test: list[str], label_key: str, meta: tuple[str, str],
                   classes: int) -> tuple[bytes, dict[str, str]]:
    """A CIFAR tarball of tiny pickled batches, and each member file's md5."""
    rng = np.random.default_rng(1)
    members, md5s = {}, {}
    for file in (*train, *test):
        batch = {"data": rng.integers(0, 256, (3, 3072)).astype(np.uint8), label_key: [0, 1, classes - 1]}
        members[file] = pickle.dumps(batch)
    members[meta[0]] = pickle.dumps({meta[1]: [f"class{i}" for i in range(classes)]})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for file, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{file}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            md5s[file] = _md5(data)
    return buffer.getvalue(), md5s


@pytest.mark.parametrize("name, cls, folder, train, test, label_key, meta, classes", [
    ("cifar10", tvd.CIFAR10, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
     "labels", ("batches.meta", "label_names"), 10),
    ("cifar100", tvd.CIFAR100, "cifar-100-python", ["train"], ["test"], "fine_labels", ("meta", "fine_label_names"),
     100)])
def test_cifar_datasets_download_their_tarball(server, tmp_path, monkeypatch, name, cls, folder, train, test,
                                               label_key, meta, classes):
    www, url = server
    tarball, md5s = _cifar_tarball(folder, train, test, label_key, meta, classes)
    (www / cls.filename).write_bytes(tarball)
    monkeypatch.setattr(cls, "url", url + cls.filename)
    monkeypatch.setattr(cls, "tgz_md5", _md5(tarball))
    monkeypatch.setattr(cls, "train_list", [[f, md5s[f]] for f in train])
    monkeypatch.setattr(cls, "test_list", [[f, md5s[f]] for f in test])
    monkeypatch.setattr(cls, "meta", {"filename": meta[0], "key": meta[1], "md5": md5s[meta[0]]})
    root = tmp_path / "data"
    assert main(["data", "download", name, "--data-root", str(root)]) == 0
    images, labels = datasets.load_tensors(name, True, root)
    assert images.shape == (3 * len(train), 3, 32, 32) and labels.max().item() == classes - 1
    assert datasets.num_classes(name) == classes


def test_a_failed_download_is_one_line_naming_the_dataset(server, tmp_path, monkeypatch, capsys):
    _, url = server
    monkeypatch.setattr(tvd.MNIST, "mirrors", [url])  # serves nothing: every file is a 404
    assert main(["data", "download", "mnist", "--data-root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Downloading dataset 'mnist'" in err


def test_the_missing_dataset_message_speaks_to_the_cli(tmp_path):
    with pytest.raises(UserException) as caught:
        datasets.load_tensors("cifar100", True, tmp_path)
    message = str(caught.value)
    assert "--data-root" in message and "byzsim data download cifar100" in message


def test_cifar100_has_a_default_model_and_an_unknown_dataset_says_so_first():
    assert Config(dataset="cifar100").model_name == "simples-cifar"
    with pytest.raises(UserException, match="Unknown dataset 'cifar1000'"):
        Config(dataset="cifar1000").validate()


def test_download_refuses_what_it_cannot_fetch():
    with pytest.raises(UserException, match="scikit-learn"):
        download("digits")


def test_downloads_default_to_byzsim_data_else_the_cache_that_reads_then_find(monkeypatch, tmp_path):
    from experiments.paths import default_root, download_root
    monkeypatch.setenv("BYZSIM_DATA", str(tmp_path / "data"))
    assert download_root() == default_root() == tmp_path / "data"
    monkeypatch.delenv("BYZSIM_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert download_root() == tmp_path / ".cache" / "byzsim" / "data"
    download_root().mkdir(parents=True)
    assert default_root() == download_root()
