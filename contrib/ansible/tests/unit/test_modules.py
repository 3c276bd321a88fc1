# Unit tests of the berth.berth modules: `python3 -m unittest discover -s contrib/ansible/tests/unit`
# (meson: the unit test 'ansible-modules').
#
# Each module runs as Ansible runs it on a target: a separate python3 process given its arguments
# as JSON. The berth CLI and systemctl are fakes on PATH (fake-berth.py) that keep their state
# (the containers `berth list --json` shows, images) in a JSON file and log every call, so the
# tests check what the module did: which files it wrote, which commands it ran, what it reported.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.abspath(os.path.join(HERE, "..", ".."))

try:
    import ansible.module_utils.basic  # noqa: F401

    HAVE_ANSIBLE = True
except ImportError:
    HAVE_ANSIBLE = False


def collections_root(tmp):
    """ansible_collections/berth/berth -> this checkout, as an installed collection looks."""
    root = os.path.join(tmp, "collections")
    os.makedirs(os.path.join(root, "ansible_collections", "berth"))
    os.symlink(COLLECTION, os.path.join(root, "ansible_collections", "berth", "berth"))
    return root


sys.path.insert(0, collections_root(tempfile.mkdtemp(prefix="berth-ansible-ut-")))
from ansible_collections.berth.berth.plugins.module_utils.berth import TomlError, to_toml  # noqa: E402


class TomlWriter(unittest.TestCase):
    def test_a_declaration_round_trips_through_a_toml_parser(self):
        decl = {
            "container": {
                "image": "reg:5000/app/web:v2",
                "command": ["sh", "-c", "echo \"hi\"\\n; exit 0"],
                "environment": {"A": "1", "WEIRD KEY": "x\ty"},
                "ephemeral": True,
                "memory": 1.5,
            },
            "network": {"networks": ["app"]},
            "service": {"requires": ["db"], "restart": "on-failure"},
            "secret": [{"name": "token", "source": "/etc/t"}, {"name": "k", "env": "K"}],
            "health": {"command": ["test", "-e", "/ready"], "interval": "1s", "retries": 3},
        }
        text = to_toml(decl)
        self.assertEqual(tomllib.loads(text), decl)
        self.assertEqual(to_toml(decl), text, "the same dict must give the same bytes")

    def test_tables_come_after_the_keys_of_their_parent(self):
        text = to_toml({"container": {"limits": {"pids": 10}, "image": "x"}})
        self.assertEqual(text, '[container]\nimage = "x"\n\n[container.limits]\npids = 10\n')

    def test_null_and_non_mappings_are_refused_with_the_key(self):
        with self.assertRaisesRegex(TomlError, "container.user: TOML has no null"):
            to_toml({"container": {"user": None}})
        with self.assertRaises(TomlError):
            to_toml(["not", "a", "mapping"])


FAKE_BERTH = r'''#!/usr/bin/env python3
import json, os, sys
state_path = os.environ["FAKE_BERTH_STATE"]
with open(state_path) as f:
    state = json.load(f)
with open(state_path + ".log", "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\n")
def save():
    with open(state_path, "w") as f:
        json.dump(state, f)
def view(name):
    for c in state["containers"]:
        if c["name"] == name:
            return c
    c = {"name": name, "load_state": "loaded", "active_state": "inactive", "health": "-", "snapshot": None}
    state["containers"].append(c)
    return c
prog, args = os.path.basename(sys.argv[0]), sys.argv[1:]
if prog == "systemctl":
    state["reloads"] = state.get("reloads", 0) + 1
    save(); sys.exit(0)
cmd = args[0]
if cmd == "validate":
    path = args[-1]
    text = open(path).read()
    if "INVALID" in text:
        print(json.dumps([{"name": "x", "valid": False, "file": path, "warnings": [],
                           "errors": [{"file": path, "line": 2, "column": 1, "message": "unknown key 'INVALID'"}]}]))
        sys.exit(1)
    print(json.dumps([{"name": "x", "valid": True, "file": path, "warnings": [], "errors": []}])); sys.exit(0)
if cmd == "plan":
    dirs = os.environ.get("BERTH_CONTAINERS_PATH", "")
    print("changed: berth@web.service\n--- a/berth@web.service\n+++ b/berth@web.service\n(search path %s)" % dirs)
    sys.exit(2)
if cmd == "list":
    print(json.dumps(state["containers"])); sys.exit(0)
if cmd in ("start", "restart", "stop"):
    c = view(args[-1])
    c["active_state"] = "inactive" if cmd == "stop" else "active"
    if cmd != "stop":
        c["health"] = state.get("health_after_start", "healthy")
        c["snapshot"] = {"name": args[-1]}
    save(); sys.exit(0)
if cmd == "rm":
    state["containers"] = [c for c in state["containers"] if c["name"] != args[-1]]
    save(); sys.exit(0)
if cmd == "image":
    sub, ref = args[1], args[-1]
    if sub == "inspect":
        img = state["images"].get(ref)
        if img is None:
            print("berth image inspect: no image '%s'" % ref, file=sys.stderr); sys.exit(1)
        print(json.dumps(img)); sys.exit(0)
    if sub == "pull":
        name, _, digest = ref.partition("@")
        state["images"][name] = {"id": digest or "sha256:" + "1" * 64, "names": [name]}
        save(); sys.exit(0)
    if sub == "rm":
        state["images"].pop(ref, None); save(); sys.exit(0)
print("fake berth: unexpected %s" % args, file=sys.stderr); sys.exit(3)
'''


@unittest.skipUnless(HAVE_ANSIBLE, "ansible-core is not installed (scripts/install-deps.sh installs it)")
class ModuleTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="berth-ansible-ut-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.root = collections_root(self.tmp)
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)
        for prog in ("berth", "systemctl"):
            path = os.path.join(self.bin, prog)
            with open(path, "w") as f:
                f.write(FAKE_BERTH)
            os.chmod(path, 0o755)
        self.state_path = os.path.join(self.tmp, "state.json")
        self.set_state(containers=[], images={})
        self.config_dir = os.path.join(self.tmp, "containers")
        os.makedirs(self.config_dir)

    def set_state(self, **state):
        with open(self.state_path, "w") as f:
            json.dump(state, f)

    def state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def calls(self):
        try:
            with open(self.state_path + ".log") as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def clear_calls(self):
        if os.path.exists(self.state_path + ".log"):
            os.unlink(self.state_path + ".log")

    def run_module(self, module, check=False, diff=False, **args):
        args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        args_path = os.path.join(self.tmp, "args.json")
        with open(args_path, "w") as f:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
        env = dict(os.environ, PATH=self.bin + ":/usr/bin:/bin", PYTHONPATH=self.root, FAKE_BERTH_STATE=self.state_path)
        path = os.path.join(COLLECTION, "plugins", "modules", module + ".py")
        p = subprocess.run([sys.executable, path, args_path], env=env, capture_output=True, text=True, timeout=60)
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.fail("module %s printed no JSON: %s %s" % (module, p.stdout, p.stderr))

    def verbs(self):
        return [c[1] if c[0] == "berth" else "systemctl " + c[1] for c in self.calls()]


WEB = {
    "container": {"image": "reg:5000/app/web:v1", "command": ["/bin/web"]},
    "service": {"requires": ["db"]},
    "health": {"command": ["test", "-e", "/ready"], "interval": "1s"},
}


class BerthContainer(ModuleTestCase):
    def container(self, **args):
        return self.run_module("berth_container", name="web", config_dir=self.config_dir, **args)

    def path(self):
        return os.path.join(self.config_dir, "web.toml")

    def test_present_writes_the_validated_declaration_then_a_second_run_changes_nothing(self):
        r = self.container(declaration=WEB)
        self.assertTrue(r["changed"], r)
        with open(self.path()) as f:
            self.assertEqual(tomllib.loads(f.read()), WEB)
        self.assertEqual(self.verbs()[:2], ["validate", "list"])
        self.assertIn("systemctl daemon-reload", self.verbs())
        self.clear_calls()
        r = self.container(declaration=WEB)
        self.assertFalse(r["changed"], r)
        self.assertNotIn("systemctl daemon-reload", self.verbs())
        self.assertNotIn("validate", self.verbs())

    def test_toml_text_and_the_same_dict_are_the_same_declaration(self):
        self.container(declaration=WEB)
        with open(self.path()) as f:
            text = f.read()
        r = self.container(toml=text.rstrip("\n"))
        self.assertFalse(r["changed"], r)

    def test_an_invalid_declaration_never_replaces_a_valid_one(self):
        self.container(declaration=WEB)
        with open(self.path()) as f:
            before = f.read()
        bad = dict(WEB, container=dict(WEB["container"], INVALID=1))
        r = self.container(declaration=bad, state="started")
        self.assertTrue(r.get("failed"), r)
        self.assertIn("web.toml:2:1: unknown key 'INVALID'", r["errors"])
        with open(self.path()) as f:
            self.assertEqual(f.read(), before)
        self.assertNotIn("start", self.verbs())

    def test_check_mode_reports_the_plan_and_changes_nothing(self):
        self.container(declaration=WEB, state="started")
        with open(self.path()) as f:
            before = f.read()
        reloads = self.state()["reloads"]
        self.clear_calls()
        v2 = dict(WEB, container=dict(WEB["container"], image="reg:5000/app/web:v2"))
        r = self.run_module("berth_container", check=True, diff=True, name="web", config_dir=self.config_dir,
                            declaration=v2, state="started")
        self.assertTrue(r["changed"], r)
        self.assertIn("changed: berth@web.service", r["plan"])
        # The candidate first in the search path, then the real declarations.
        self.assertRegex(r["plan"], r"search path [^:]*/berth-ansible-plan-[^:]+:%s:" % self.config_dir)
        self.assertIn('+image = "reg:5000/app/web:v2"', "".join(
            "+" + line + "\n" for line in r["diff"][0]["after"].splitlines()))
        self.assertEqual(r["diff"][1]["prepared"], r["plan"])
        with open(self.path()) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(self.state()["reloads"], reloads)
        self.assertFalse({"start", "restart", "stop"} & set(self.verbs()), self.verbs())

    def test_started_starts_once_and_a_changed_declaration_restarts(self):
        r = self.container(declaration=WEB, state="started", wait_healthy=True)
        self.assertTrue(r["changed"])
        self.assertEqual(r["container"]["health"], "healthy")
        self.assertEqual(self.verbs().count("start"), 1)
        self.clear_calls()
        r = self.container(declaration=WEB, state="started")
        self.assertFalse(r["changed"], r)
        self.assertNotIn("start", self.verbs())
        v2 = dict(WEB, container=dict(WEB["container"], image="reg:5000/app/web:v2"))
        r = self.container(declaration=v2, state="started")
        self.assertTrue(r["changed"])
        self.assertIn("restart", self.verbs())

    def test_waiting_for_health_fails_on_an_unhealthy_container(self):
        self.set_state(containers=[], images={}, health_after_start="unhealthy")
        r = self.container(declaration=WEB, state="started", wait_healthy=True, timeout=5)
        self.assertTrue(r.get("failed"), r)
        self.assertIn("did not become healthy", r["msg"])

    def test_restarted_always_restarts_and_stopped_stops(self):
        self.container(declaration=WEB, state="started")
        self.clear_calls()
        self.assertTrue(self.container(state="restarted")["changed"])
        self.assertIn("restart", self.verbs())
        self.assertTrue(self.container(state="stopped")["changed"])
        self.assertFalse(self.container(state="stopped")["changed"])

    def test_absent_stops_and_removes_the_declaration_dropins_and_snapshot(self):
        self.container(declaration=WEB, state="started")
        os.makedirs(self.path() + ".d")
        self.clear_calls()
        r = self.container(state="absent")
        self.assertTrue(r["changed"])
        self.assertEqual([v for v in self.verbs() if v != "list"], ["stop", "systemctl daemon-reload", "rm"])
        self.assertFalse(os.path.exists(self.path()))
        self.assertFalse(os.path.exists(self.path() + ".d"))
        self.assertFalse(self.container(state="absent")["changed"])

    def test_a_name_that_is_a_path_is_refused(self):
        r = self.run_module("berth_container", name="../evil", config_dir=self.config_dir, declaration=WEB)
        self.assertTrue(r.get("failed"))
        self.assertEqual(os.listdir(self.config_dir), [])


class BerthImage(ModuleTestCase):
    DIGEST = "sha256:" + "a" * 64

    def test_a_pinned_image_is_pulled_once_by_digest(self):
        r = self.run_module("berth_image", name="reg:5000/app/web:v1", digest=self.DIGEST)
        self.assertTrue(r["changed"], r)
        self.assertIn(["berth", "image", "pull", "reg:5000/app/web:v1@" + self.DIGEST], self.calls())
        self.clear_calls()
        r = self.run_module("berth_image", name="reg:5000/app/web:v1", digest=self.DIGEST)
        self.assertFalse(r["changed"], r)
        self.assertNotIn("pull", [c[2] for c in self.calls()])

    def test_a_tag_at_another_digest_is_pulled_again(self):
        self.set_state(containers=[], images={"reg/web:v1": {"id": "sha256:" + "b" * 64}})
        r = self.run_module("berth_image", name="reg/web:v1", digest=self.DIGEST)
        self.assertTrue(r["changed"])
        self.assertEqual(r["image"]["id"], self.DIGEST)

    def test_absent_removes_and_a_bad_digest_is_refused(self):
        self.set_state(containers=[], images={"reg/web:v1": {"id": self.DIGEST}})
        self.assertTrue(self.run_module("berth_image", name="reg/web:v1", state="absent")["changed"])
        self.assertFalse(self.run_module("berth_image", name="reg/web:v1", state="absent")["changed"])
        r = self.run_module("berth_image", name="reg/web:v1", digest="sha256:xyz")
        self.assertTrue(r.get("failed"))


@unittest.skipUnless(HAVE_ANSIBLE and shutil.which("ansible-playbook"), "ansible-core is not installed")
class Examples(unittest.TestCase):
    def test_every_example_playbook_passes_ansible_syntax_check(self):
        tmp = tempfile.mkdtemp(prefix="berth-ansible-ut-")
        self.addCleanup(shutil.rmtree, tmp)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(tmp), HOME=tmp, ANSIBLE_LOCAL_TEMP=tmp)
        examples = os.path.join(COLLECTION, "examples")
        for name in sorted(os.listdir(examples)):
            if not name.endswith(".yml"):
                continue
            p = subprocess.run(["ansible-playbook", "--syntax-check", "-i", "localhost,", os.path.join(examples, name)],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, "%s: %s%s" % (name, p.stdout, p.stderr))


if __name__ == "__main__":
    unittest.main()
