set -x
cd /tmp/democlone
export PYTHONPATH=/tmp/democlone
/work/main/.venv/bin/python -m xentbench.cli gate HEAD~1 HEAD --markdown /tmp/demo-empty.md --json /tmp/demo-empty.json > /tmp/demo-empty.log 2>&1
echo "empty exit $?"
/work/main/.venv/bin/python - <<'PY'
import sys
sys.path.insert(0, "/tmp/democlone/experiments")
import gate_experiments as g
with open("/tmp/democlone/impls/__init__.py", "a") as f:
    f.write(g.PLANT.format(function=g.FUNCTION, fraction=0.10))
PY
git -c user.name=x -c user.email=x@x commit -qam "planted: sparse loss 10% slower"
/work/main/.venv/bin/python -m xentbench.cli gate HEAD~1 HEAD --quick --markdown /tmp/demo-planted.md --json /tmp/demo-planted.json > /tmp/demo-planted.log 2>&1
echo "planted exit $?"
