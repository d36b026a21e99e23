"""The README's commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [line for b in blocks for line in b.splitlines() if line and line[0] != "#"]
    test_command = 'python -m pip install -e ".[test,dist]" && python -m pytest'
    assert test_command in commands
    assert "python -m pip install -e . && python -m fastmlp" in commands
    ci_commands = [line for line in ci.splitlines() if line and not line.startswith("#")]
    assert ci_commands[-1] == test_command
    # README's step 2 (its comment line and command) is the end of .ci/run, verbatim
    step = re.search(r"^# 2\..*\n" + re.escape(test_command) + r"\n", readme, flags=re.M)
    assert step is not None
    assert ci.endswith(step.group(0))
