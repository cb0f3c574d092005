"""aics test suite (a regular package, so that `tests` resolves here and not to a stray top-level `tests`
package a dependency installs, dcase_util for one, when spawned workers import test modules)."""
