import pytest


@pytest.fixture(scope="session")
def mnist_synth(tmp_path_factory):
    """A small offline MNIST-format directory (the four IDX files)."""
    from aics.tasks.vae.synth import generate

    out = tmp_path_factory.mktemp("mnist_synth")
    generate(out, n_train=700, n_test=200, seed=0, show_progress=False)
    return out


@pytest.fixture(scope="session")
def mnist_prepared(mnist_synth, tmp_path_factory):
    from aics.tasks.vae.data import prepare

    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(mnist_synth, out, valid_size=200, seed=0)
    return out


@pytest.fixture
def free_port():
    """A function returning a free TCP port on localhost (a rendezvous port for spawned gloo ranks)."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick
