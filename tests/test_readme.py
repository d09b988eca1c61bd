"""README.md opens with the two commands (demo, tests), and .ci/run runs the test one verbatim."""

from tests.conftest import REPO


def readme_commands() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    first_block = lines.index("```bash")
    end = lines.index("```", first_block + 1)
    return [line for line in lines[first_block + 1 : end] if line and not line.startswith("#")]


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = readme_commands()
    assert demo.endswith("hpcgan demo") and "pip install" in demo
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = readme_commands()
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == tests
