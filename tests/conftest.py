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


class AicsRunner:
    """``aics ARGS`` run in this process: ``aics(*args)`` asserts exit code 0 and returns stdout (stderr
    shows on failure); ``aics.error(*args)`` asserts exit code 2 and a single ``aics: error: ...`` line on
    stderr, and returns that line."""

    def __init__(self, capsys):
        self.capsys = capsys

    def _run(self, args) -> tuple[int, str, str]:
        from aics.cli import main

        self.capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return info.value.code, out, err

    def __call__(self, *args) -> str:
        code, out, err = self._run(args)
        assert code == 0, err
        return out

    def error(self, *args) -> str:
        code, _, err = self._run(args)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aics: error: "), err
        return lines[0]


@pytest.fixture
def aics(capsys) -> AicsRunner:
    return AicsRunner(capsys)
