"""The store commands of `iris-models`: ls, import, path, rm, pin/unpin/priority, gc, stats,
fsck and policy, as text and JSON, with --store or IRIS_MODELS_HOME; exit statuses and
one-line errors; and the installed console script run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.gguf_py_files import tiny_gguf

from iris_models.cli import main
from iris_models.store import Store

SAMPLE = Path(__file__).parents[1] / "src" / "iris_models" / "data" / "sample.gguf"
STORE_COMMANDS = [
    "ls",
    "path",
    "import",
    "rm",
    "pin",
    "unpin",
    "priority",
    "gc",
    "stats",
    "fsck",
    "policy",
]


@pytest.fixture(autouse=True)
def _no_store_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own store must never be touched by these tests, and tables are laid
    out at one width whatever terminal runs them."""
    monkeypatch.delenv("IRIS_MODELS_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def squashed(text: str) -> str:
    """Text with all whitespace taken out: the console wraps long lines (paths under tmp_path
    are long) at its width, so text output is compared without the breaks it inserted."""
    return "".join(text.split())


def install_copies(root: Path, sources: Path, *model_ids: str) -> dict[str, int]:
    """Installs one small model per id (copied in, so the store owns its bytes); returns
    their sizes. Opening the store also stamps its last cleanup, so that the commands below
    do not run an automatic one."""
    sizes = {}
    with Store(root) as store:
        for model_id in model_ids:
            source = tiny_gguf(sources / f"{model_id}.gguf", f"Model {model_id}")
            store.install(model_id, [source], placement="copy")
            sizes[model_id] = source.stat().st_size
    return sizes


def ls_json(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, dict[str, object]]:
    status, out, err = run_cli(capsys, "ls", "--json", "--store", str(root))
    assert (status, err) == (0, "")
    return {entry["id"]: entry for entry in json.loads(out)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


# -- ls -----------------------------------------------------------------------------------


def test_ls_on_an_empty_store_says_how_to_add_models(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(capsys, "ls", "--store", str(root))

    assert (status, err) == (0, "")
    assert squashed(out) == squashed(
        f"No models in {root}. Add some with `iris-models import PATH`."
    )
    assert (root / "store.db").is_file()


def test_ls_json_on_an_empty_store_is_an_empty_list(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(capsys, "ls", "--json", "--store", str(root))

    assert (status, err) == (0, "")
    assert json.loads(out) == []


def test_ls_shows_a_row_per_model_with_its_flags_and_a_total(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    sizes = install_copies(root, tmp_path / "src", "alpha")
    with Store(root) as store:
        store.import_path(SAMPLE)
        store.pin("alpha")
        store.set_priority("sample", "low")

    status, out, err = run_cli(capsys, "ls", "--store", str(root))

    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATE",
        "SIZE",
        "ARCH",
        "QUANT",
        "USES",
        "LAST",
        "USED",
        "FLAGS",
    ]
    assert lines[1].split() == f"alpha ready {sizes['alpha']} B llama F32 0 never pinned".split()
    assert lines[2].split() == [
        "sample",
        "ready",
        "345.3",
        "kB",
        "llama",
        "Q4_K_M",
        "0",
        "never",
        "low,",
        "reference",
    ]
    assert squashed("\n".join(lines[3:])) == squashed(f"2 models, {sizes['alpha']} B in {root}")


def test_ls_json_lists_every_model_with_in_use_false_when_nobody_holds_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    sizes = install_copies(root, tmp_path / "src", "beta", "alpha")

    models = ls_json(capsys, root)

    assert list(models) == ["alpha", "beta"]
    with Store(root) as store:
        for model_id, entry in models.items():
            assert entry == dict(store.get(model_id).to_dict(), in_use=False)
            assert entry["size_bytes"] == sizes[model_id]
            assert entry["state"] == "ready"


def test_ls_category_filter_lists_only_that_category(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    with Store(root) as store:
        store.install("chat", [tiny_gguf(tmp_path / "chat.gguf", "Chat")], placement="copy")
        store.install(
            "embed", [tiny_gguf(tmp_path / "embed.gguf", "Embed")], placement="copy",
            category="embedding",
        )  # fmt: skip

    status, out, _err = run_cli(
        capsys, "ls", "--json", "--category", "embedding", "--store", str(root)
    )

    assert status == 0
    assert [entry["id"] for entry in json.loads(out)] == ["embed"]


def test_ls_shows_a_model_in_use_by_a_lease(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha", "beta")

    with Store(root) as store, store.use("alpha"):
        models = ls_json(capsys, root)
        status, out, _err = run_cli(capsys, "ls", "--store", str(root))

    assert (models["alpha"]["in_use"], models["beta"]["in_use"]) == (True, False)
    assert models["alpha"]["use_count"] == 1
    assert status == 0
    row = next(line for line in out.splitlines() if line.startswith("alpha"))
    assert row.split()[-2:] == ["in", "use"]


def test_the_console_script_lists_the_store_as_json_from_another_process(
    tmp_path: Path, root: Path
) -> None:
    executable = shutil.which("iris-models")
    assert executable is not None, "the iris-models console script is not installed"
    install_copies(root, tmp_path / "src", "alpha", "beta")
    environment = dict(os.environ, IRIS_MODELS_HOME=str(root))

    with Store(root) as store, store.use("beta"):
        result = subprocess.run(
            [executable, "ls", "--json"],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    listed = json.loads(result.stdout)
    assert [(entry["id"], entry["in_use"]) for entry in listed] == [
        ("alpha", False),
        ("beta", True),
    ]


# -- where the store is -------------------------------------------------------------------


def test_iris_models_home_chooses_the_store_when_no_store_option_is_given(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    root: Path,
) -> None:
    monkeypatch.setenv("IRIS_MODELS_HOME", str(root))
    source = tiny_gguf(tmp_path / "homed.gguf", "Homed")

    status, _out, err = run_cli(capsys, "import", str(source))
    assert (status, err) == (0, "")
    status, out, err = run_cli(capsys, "ls", "--json")

    assert (status, err) == (0, "")
    assert [entry["id"] for entry in json.loads(out)] == ["homed"]
    assert (root / "store.db").is_file()
    with Store(root) as store:
        assert store.get("homed").source == str(source)


def test_the_store_option_wins_over_iris_models_home(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    root: Path,
) -> None:
    monkeypatch.setenv("IRIS_MODELS_HOME", str(tmp_path / "home-store"))
    install_copies(root, tmp_path / "src", "alpha")

    assert list(ls_json(capsys, root)) == ["alpha"]
    assert not (tmp_path / "home-store").exists()


def test_a_store_option_naming_a_file_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")

    status, out, err = run_cli(capsys, "ls", "--store", str(not_a_folder))

    assert_one_line_error(status, out, err, str(not_a_folder))


# -- import -------------------------------------------------------------------------------


def test_import_prints_what_it_adopted_and_leaves_the_file_in_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    source = tmp_path / "sample.gguf"
    shutil.copyfile(SAMPLE, source)

    status, out, err = run_cli(capsys, "import", str(source), "--store", str(root))

    assert (status, err) == (0, "")
    assert squashed(out) == squashed(f"imported sample (345.3 kB, reference) from {source}")
    assert source.is_file()
    assert not (root / "models" / "sample").exists()


def test_import_json_lists_imported_models_and_skipped_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    folder = tmp_path / "models"
    tiny_gguf(folder / "good.gguf", "Good")
    (folder / "broken.gguf").write_text("not a model")

    status, out, err = run_cli(capsys, "import", str(folder), "--json", "--store", str(root))

    assert (status, err) == (0, "")
    document = json.loads(out)
    assert sorted(document) == ["imported", "skipped"]
    (imported,) = document["imported"]
    with Store(root) as store:
        assert imported == store.get("good").to_dict()
    (skipped,) = document["skipped"]
    assert skipped["path"] == str(folder / "broken.gguf")
    assert "not a usable GGUF file" in skipped["reason"]


def test_import_with_mode_and_id_copies_under_the_chosen_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    source = tiny_gguf(tmp_path / "downloaded.gguf", "Chosen")

    status, out, err = run_cli(
        capsys, "import", str(source), "--mode", "copy", "--id", "chosen", "--json",
        "--store", str(root),
    )  # fmt: skip

    assert (status, err) == (0, "")
    (model,) = json.loads(out)["imported"]
    assert (model["id"], model["storage"]) == ("chosen", "managed")
    assert model["path"] == str(root / "models" / "chosen" / "downloaded.gguf")
    assert source.is_file()


@pytest.mark.parametrize(
    ("mode", "source_remains", "storage"),
    [("hardlink", True, "hardlink"), ("move", False, "managed")],
)
def test_import_mode_hardlink_keeps_and_move_takes_the_original(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    root: Path,
    mode: str,
    source_remains: bool,
    storage: str,
) -> None:
    source = tiny_gguf(tmp_path / "model.gguf", "Placed")

    status, out, _err = run_cli(
        capsys, "import", str(source), "--mode", mode, "--json", "--store", str(root)
    )

    assert status == 0
    assert json.loads(out)["imported"][0]["storage"] == storage
    assert source.exists() is source_remains
    assert (root / "models" / "model" / "model.gguf").is_file()


def test_import_of_an_already_imported_file_exits_1_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    source = tiny_gguf(tmp_path / "model.gguf", "Twice")
    assert run_cli(capsys, "import", str(source), "--store", str(root))[0] == 0

    status, out, err = run_cli(capsys, "import", str(source), "--store", str(root))

    assert (status, err) == (1, "")
    assert squashed(out) == squashed(f"skipped {source}: already imported")


def test_import_of_a_folder_without_gguf_files_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    (tmp_path / "empty").mkdir()

    status, out, err = run_cli(capsys, "import", str(tmp_path / "empty"), "--store", str(root))

    assert (status, err) == (0, "")
    assert squashed(out) == squashed(f"no GGUF models found in {tmp_path / 'empty'}")


def test_import_with_an_id_for_two_models_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    tiny_gguf(tmp_path / "models" / "one.gguf", "One")
    tiny_gguf(tmp_path / "models" / "two.gguf", "Two")

    status, out, err = run_cli(
        capsys, "import", str(tmp_path / "models"), "--id", "x", "--store", str(root)
    )

    assert_one_line_error(status, out, err, "holds 2 models; an explicit id needs exactly one")


def test_import_of_a_missing_path_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    status, out, err = run_cli(capsys, "import", str(tmp_path / "nowhere"), "--store", str(root))

    assert_one_line_error(status, out, err, "does not exist")


def test_import_of_a_missing_path_names_the_path_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    missing = tmp_path / "nowhere"

    _status, _out, err = run_cli(capsys, "import", str(missing), "--store", str(root))

    assert err.count(str(missing)) == 1


def test_import_output_keeps_a_long_source_path_on_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    deep = tmp_path / ("long-folder-name-" * 6) / ("and-another-one-" * 6) / ("more-" * 20)
    source = tiny_gguf(deep / "model.gguf", "Long")

    status, out, _err = run_cli(capsys, "import", str(source), "--store", str(root))

    assert status == 0
    assert out.count("\n") == 1
    assert str(source) in out


# -- path ---------------------------------------------------------------------------------


def test_path_prints_exactly_the_file_path_and_a_newline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")
    referenced = tmp_path / ("a-rather-long-folder-name-" * 4) / "sample.gguf"
    referenced.parent.mkdir()
    shutil.copyfile(SAMPLE, referenced)
    with Store(root) as store:
        store.import_path(referenced)

    managed = run_cli(capsys, "path", "alpha", "--store", str(root))
    adopted = run_cli(capsys, "path", "SAMPLE", "--store", str(root))

    assert managed == (0, f"{root / 'models' / 'alpha' / 'alpha.gguf'}\n", "")
    assert adopted == (0, f"{referenced}\n", "")


def test_path_json_gives_the_path_and_every_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")

    status, out, _err = run_cli(capsys, "path", "alpha", "--json", "--store", str(root))

    assert status == 0
    document = json.loads(out)
    stored = str(root / "models" / "alpha" / "alpha.gguf")
    assert (document["model_id"], document["path"]) == ("alpha", stored)
    assert [(f["rel_path"], f["role"], f["path"]) for f in document["files"]] == [
        ("alpha.gguf", "model", stored)
    ]


def test_path_of_a_missing_model_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(capsys, "path", "nope", "--store", str(root))

    assert_one_line_error(status, out, err, "no model 'nope' in the store")


def test_path_of_a_model_not_yet_installed_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    with Store(root) as store:
        store.register("pending")

    status, out, err = run_cli(capsys, "path", "pending", "--store", str(root))

    assert_one_line_error(status, out, err, "cannot be used: it is discovered")


@pytest.mark.parametrize("bad_id", ["../escape", ".hidden", "a/b"])
def test_path_of_an_invalid_id_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], root: Path, bad_id: str
) -> None:
    status, out, err = run_cli(capsys, "path", bad_id, "--store", str(root))

    assert_one_line_error(status, out, err, repr(bad_id))


# -- rm -----------------------------------------------------------------------------------


def test_rm_json_reports_each_removed_model_and_deletes_its_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    sizes = install_copies(root, tmp_path / "src", "alpha", "beta", "gamma")

    status, out, err = run_cli(capsys, "rm", "alpha", "gamma", "--json", "--store", str(root))

    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "removed": [
            {"model_id": "alpha", "bytes_freed": sizes["alpha"]},
            {"model_id": "gamma", "bytes_freed": sizes["gamma"]},
        ],
        "failed": [],
    }
    assert list(ls_json(capsys, root)) == ["beta"]
    assert sorted(path.name for path in (root / "models").iterdir()) == ["beta"]


def test_rm_of_a_missing_id_exits_1_and_still_removes_the_others(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    sizes = install_copies(root, tmp_path / "src", "alpha")

    status, out, err = run_cli(capsys, "rm", "nope", "alpha", "--store", str(root))

    assert status == 1
    assert out == f"removed alpha ({sizes['alpha']} B freed)\n"
    assert err.startswith("iris-models: error: no model 'nope' in the store")
    assert err.count("\n") == 1
    assert ls_json(capsys, root) == {}


def test_rm_json_of_a_missing_id_lists_it_as_failed(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(capsys, "rm", "nope", "--json", "--store", str(root))

    assert (status, err) == (1, "")
    document = json.loads(out)
    assert document["removed"] == []
    (failed,) = document["failed"]
    assert failed["model_id"] == "nope"
    assert "no model 'nope' in the store" in failed["error"]


def test_rm_refuses_a_model_in_use_and_keeps_its_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")

    with Store(root) as store, store.use("alpha") as path:
        status, out, err = run_cli(capsys, "rm", "alpha", "--store", str(root))
        assert path.is_file()

    assert_one_line_error(status, out, err, "model 'alpha' is in use")
    assert list(ls_json(capsys, root)) == ["alpha"]


def test_rm_of_a_referenced_model_forgets_it_and_keeps_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    source = tiny_gguf(tmp_path / "mine.gguf", "Mine")
    assert run_cli(capsys, "import", str(source), "--store", str(root))[0] == 0

    status, out, _err = run_cli(capsys, "rm", "mine", "--store", str(root))

    assert (status, out) == (0, "removed mine (0 B freed)\n")
    assert source.is_file()
    assert ls_json(capsys, root) == {}


# -- pin, unpin, priority -----------------------------------------------------------------


def test_pin_unpin_and_priority_show_in_ls_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha", "beta")

    assert run_cli(capsys, "pin", "alpha", "--store", str(root)) == (0, "pinned alpha\n", "")
    pinned = ls_json(capsys, root)
    status, out, _err = run_cli(
        capsys, "priority", "beta", "critical", "--json", "--store", str(root)
    )
    assert (status, json.loads(out)) == (0, {"model_id": "beta", "priority": "critical"})
    prioritized = ls_json(capsys, root)
    status, out, _err = run_cli(capsys, "unpin", "alpha", "--json", "--store", str(root))
    assert (status, json.loads(out)) == (0, {"model_id": "alpha", "pinned": False})
    unpinned = ls_json(capsys, root)

    assert (pinned["alpha"]["pinned"], pinned["beta"]["pinned"]) == (True, False)
    assert prioritized["beta"]["priority"] == "critical"
    assert prioritized["alpha"]["priority"] == "normal"
    assert unpinned["alpha"]["pinned"] is False
    assert unpinned["beta"]["priority"] == "critical"


def test_priority_text_output_names_the_level(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")

    result = run_cli(capsys, "priority", "alpha", "low", "--store", str(root))

    assert result == (0, "alpha: priority low\n", "")
    assert ls_json(capsys, root)["alpha"]["priority"] == "low"


@pytest.mark.parametrize("args", [("pin", "nope"), ("unpin", "nope"), ("priority", "nope", "high")])
def test_pin_unpin_and_priority_of_a_missing_model_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], root: Path, args: tuple[str, ...]
) -> None:
    status, out, err = run_cli(capsys, *args, "--store", str(root))

    assert_one_line_error(status, out, err, "no model 'nope' in the store")


def test_priority_rejects_an_unknown_level(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["priority", "alpha", "urgent", "--store", str(root)])

    assert exit_info.value.code == 2
    assert "invalid choice: 'urgent'" in capsys.readouterr().err


# -- gc -----------------------------------------------------------------------------------


@pytest.fixture
def used_in_order(tmp_path: Path, root: Path) -> dict[str, int]:
    """Three models owned by the store, used oldest to newest: old, middle, new; old is
    pinned. The policy allows one byte less than they take, and no free-disk floor (so that
    the disk of the machine running the tests plays no part)."""
    sizes = install_copies(root, tmp_path / "src", "old", "middle", "new")
    with Store(root) as store:
        for model_id in ("old", "middle", "new"):
            with store.use(model_id):
                pass
        store.pin("old")
    assert main(["policy", "set", "max-size", str(sum(sizes.values()) - 1), "min-free", "0",
                 "--store", str(root)]) == 0  # fmt: skip
    return sizes


def test_gc_dry_run_prints_the_plan_and_removes_nothing(
    capsys: pytest.CaptureFixture[str], root: Path, used_in_order: dict[str, int]
) -> None:
    capsys.readouterr()
    total = sum(used_in_order.values())

    status, out, err = run_cli(capsys, "gc", "--dry-run", "--store", str(root))

    assert (status, err) == (0, "")
    middle = used_in_order["middle"]
    text = squashed(out)
    assert text.startswith(
        squashed(f"needs 1 B: store size {total} bytes is over the {total - 1}-byte limit")
    )
    evict = f"evict middle ({middle} B): normal priority; least recently used (last used"
    assert squashed(evict) in text
    assert text.count("evict") == 1
    assert text.endswith(
        squashed(f"passed over: 1 pinned plan frees {middle} B dry run: nothing was removed")
    )
    assert sorted(ls_json(capsys, root)) == ["middle", "new", "old"]
    assert (root / "models" / "middle" / "middle.gguf").is_file()


def test_gc_evicts_the_least_recently_used_model_that_is_not_pinned(
    capsys: pytest.CaptureFixture[str], root: Path, used_in_order: dict[str, int]
) -> None:
    capsys.readouterr()

    status, out, err = run_cli(capsys, "gc", "--store", str(root))

    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == f"freed {used_in_order['middle']} B"
    assert sorted(ls_json(capsys, root)) == ["new", "old"]
    assert sorted(path.name for path in (root / "models").iterdir()) == ["new", "old"]
    again = run_cli(capsys, "gc", "--store", str(root))
    assert again == (
        0,
        "The store is within its policy: nothing to free.\nfreed 0 B\n",
        "",
    )


def test_gc_json_gives_the_plan_and_the_result(
    capsys: pytest.CaptureFixture[str], root: Path, used_in_order: dict[str, int]
) -> None:
    capsys.readouterr()

    dry_status, dry_out, _err = run_cli(capsys, "gc", "--dry-run", "--json", "--store", str(root))
    status, out, _err = run_cli(capsys, "gc", "--json", "--store", str(root))

    assert (dry_status, status) == (0, 0)
    dry = json.loads(dry_out)
    done = json.loads(out)
    assert (dry["dry_run"], dry["result"]) == (True, None)
    assert done["dry_run"] is False
    middle = used_in_order["middle"]
    plan = done["plan"]
    assert sorted(plan) == sorted(dry["plan"]) == [
        "aggressive", "bytes_freed", "bytes_to_free", "evictions", "leftovers", "needs",
        "policy", "protected", "satisfied", "shortfall_bytes",
    ]  # fmt: skip
    assert (plan["policy"], plan["aggressive"]) == ("lru", False)
    assert [need["bytes"] for need in plan["needs"]] == [1]
    assert (plan["bytes_to_free"], plan["bytes_freed"], plan["shortfall_bytes"]) == (1, middle, 0)
    assert plan["satisfied"] is True
    assert [(e["model_id"], e["size_bytes"], e["priority"]) for e in plan["evictions"]] == [
        ("middle", middle, "normal")
    ]
    assert (plan["leftovers"], plan["protected"]) == ([], {"pinned": 1})
    result = done["result"]
    assert sorted(result) == ["bytes_freed", "evicted", "leftovers_removed", "skipped"]
    assert [(e["model_id"], e["size_bytes"]) for e in result["evicted"]] == [("middle", middle)]
    assert (result["bytes_freed"], result["skipped"], result["leftovers_removed"]) == (
        middle,
        [],
        [],
    )


def test_gc_deletes_leftovers_of_an_abandoned_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")
    leftover = root / ".staging" / "ghost.0123456789ab"
    leftover.mkdir(parents=True)
    (leftover / "ghost.gguf").write_bytes(b"\0" * 1000)

    status, out, _err = run_cli(capsys, "gc", "--store", str(root))

    assert status == 0
    assert squashed(f"delete {leftover} (1.0 kB): abandoned install") in squashed(out)
    assert out.endswith("freed 1.0 kB\n")
    assert not leftover.exists()
    assert list(ls_json(capsys, root)) == ["alpha"]


# -- stats --------------------------------------------------------------------------------


def test_stats_text_sums_owned_and_referenced_bytes_and_counts_evictions(
    capsys: pytest.CaptureFixture[str], root: Path, used_in_order: dict[str, int]
) -> None:
    with Store(root) as store:
        store.import_path(SAMPLE, category="vision")
    assert run_cli(capsys, "gc", "--store", str(root))[0] == 0
    owned = used_in_order["old"] + used_in_order["new"]

    status, out, err = run_cli(capsys, "stats", "--store", str(root))

    assert (status, err) == (0, "")
    text = squashed(out)
    assert text.startswith(squashed(f"store {root}"))
    assert squashed(f"3 models: {owned} B owned, 345.3 kB referenced; 2 uses") in text
    assert squashed("policy: lru, max size ") in text
    assert squashed(f"by category: llm {owned} B, vision 345.3 kB") in text
    assert squashed("evicted so far: 1 models, ") in text
    assert squashed(f"middle {used_in_order['middle']} B normal priority; least recently") in text
    table = [line.split() for line in out.splitlines() if line.startswith(("old", "new"))]
    assert sorted(row[:3] for row in table) == [["new", "llm", "ready"], ["old", "llm", "ready"]]


def test_stats_json_has_totals_models_policy_and_recent_evictions(
    capsys: pytest.CaptureFixture[str], root: Path, used_in_order: dict[str, int]
) -> None:
    assert run_cli(capsys, "gc", "--store", str(root))[0] == 0

    status, out, _err = run_cli(capsys, "stats", "--json", "--store", str(root))

    assert status == 0
    stats = json.loads(out)
    assert stats["root"] == str(root)
    assert stats["model_count"] == 2
    assert stats["owned_bytes"] == used_in_order["old"] + used_in_order["new"]
    assert stats["referenced_bytes"] == 0
    assert stats["bytes_by_state"] == {"ready": stats["owned_bytes"]}
    assert stats["total_uses"] == 2
    assert {model["id"]: model["pinned"] for model in stats["models"]} == {
        "old": True,
        "new": False,
    }
    assert stats["policy"]["max_size_bytes"] == sum(used_in_order.values()) - 1
    assert (stats["evicted_count"], stats["evicted_bytes"]) == (1, used_in_order["middle"])
    (event,) = stats["recent_evictions"]
    assert (event["model_id"], event["kind"], event["bytes"]) == (
        "middle",
        "evicted",
        used_in_order["middle"],
    )
    assert stats["last_cleanup_at"] is not None
    assert stats["disk_total_bytes"] >= stats["disk_free_bytes"] > 0


# -- fsck ---------------------------------------------------------------------------------


def test_fsck_of_a_consistent_store_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha", "beta")

    status, out, err = run_cli(capsys, "fsck", "--store", str(root))

    assert (status, err) == (0, "")
    assert out == ("checked 2 models, 2 files; database integrity: ok\nthe store is consistent\n")


def test_fsck_finds_a_deleted_model_file_and_repair_marks_the_model_failed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha", "beta")
    (root / "models" / "alpha" / "alpha.gguf").unlink()

    found = run_cli(capsys, "fsck", "--store", str(root))
    repaired = run_cli(capsys, "fsck", "--repair", "--store", str(root))
    after = run_cli(capsys, "fsck", "--json", "--store", str(root))

    assert found[0] == 1
    assert "  missing_file: alpha: the file is missing\n" in found[1]
    assert found[1].endswith("run `iris-models fsck --repair` to fix these\n")
    assert repaired[0] == 0
    assert squashed(
        "missing_file: alpha: the file is missing -> marked the model failed "
        "(remove it, or install it again)"
    ) in squashed(repaired[1])
    assert repaired[1].endswith("repaired\n")
    models = ls_json(capsys, root)
    assert (models["alpha"]["state"], models["beta"]["state"]) == ("error", "ready")
    # The failed model stays until it is removed: fsck notes it, but the store is
    # consistent (the database says what the disk holds).
    assert after[0] == 0
    assert [(i["kind"], i["model_id"], i["note"]) for i in json.loads(after[1])["issues"]] == [
        ("failed", "alpha", True)
    ]
    assert run_cli(capsys, "rm", "alpha", "--store", str(root))[0] == 0
    assert run_cli(capsys, "fsck", "--store", str(root))[0] == 0


def test_fsck_finds_a_stray_file_and_repair_deletes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")
    stray = root / "models" / "alpha" / "copy of alpha.gguf"
    stray.write_bytes(b"stray")

    found = run_cli(capsys, "fsck", "--store", str(root))
    repaired = run_cli(capsys, "fsck", "--repair", "--store", str(root))
    second = run_cli(capsys, "fsck", "--store", str(root))

    assert found[0] == 1
    assert squashed("stray_file: alpha: a file the store did not record") in squashed(found[1])
    assert repaired[0] == 0
    assert squashed("(a leftover part file or a stray copy) -> deleted") in squashed(repaired[1])
    assert not stray.exists()
    assert (root / "models" / "alpha" / "alpha.gguf").is_file()
    assert second == (
        0,
        "checked 1 models, 1 files; database integrity: ok\nthe store is consistent\n",
        "",
    )


def test_fsck_json_reports_issues_and_exits_1_until_repaired(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")
    stray = root / "models" / "alpha" / "notes.txt"
    stray.write_text("x")

    status, out, _err = run_cli(capsys, "fsck", "--json", "--store", str(root))
    repair_status, repair_out, _err = run_cli(
        capsys, "fsck", "--repair", "--json", "--store", str(root)
    )

    assert status == 1
    report = json.loads(out)
    assert sorted(report) == [
        "damaged_database_moved_to", "files_checked", "integrity", "issues", "models_checked",
        "ok", "repaired",
    ]  # fmt: skip
    assert (report["ok"], report["repaired"], report["integrity"]) == (False, False, "ok")
    assert (report["models_checked"], report["files_checked"]) == (1, 1)
    assert report["damaged_database_moved_to"] is None
    (issue,) = report["issues"]
    assert (issue["kind"], issue["model_id"], issue["path"], issue["action"]) == (
        "stray_file",
        "alpha",
        str(stray),
        None,
    )
    assert repair_status == 0
    repaired = json.loads(repair_out)
    assert (repaired["ok"], repaired["repaired"]) == (True, True)
    assert repaired["issues"][0]["action"] == "deleted"


def test_fsck_finds_an_edited_model_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path
) -> None:
    install_copies(root, tmp_path / "src", "alpha")
    stored = root / "models" / "alpha" / "alpha.gguf"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))

    status, out, _err = run_cli(capsys, "fsck", "--store", str(root))

    assert status == 1
    assert squashed("digest_mismatch: alpha: sha256 is now sha256:") in squashed(out)


# -- policy -------------------------------------------------------------------------------


def test_policy_show_prints_the_defaults(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    status, out, err = run_cli(capsys, "policy", "show", "--store", str(root))

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "max-size     none",
        "min-free     500.0 MB (500000000 bytes)",
        "eviction     lru",
        "interval     24h",
        "auto-cleanup true",
        "aggressive   false",
    ]


def test_policy_set_changes_and_keeps_the_settings(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(
        capsys, "policy", "set", "max-size", "1.5GiB", "eviction", "largest-first",
        "interval", "12h", "auto-cleanup", "off", "--store", str(root),
    )  # fmt: skip

    assert (status, err) == (0, "")
    assert "max-size     1.6 GB (1610612736 bytes)" in out
    assert "eviction     largest_first" in out
    status, out, _err = run_cli(capsys, "policy", "show", "--json", "--store", str(root))
    assert status == 0
    assert json.loads(out) == {
        "max_size_bytes": 1_610_612_736,
        "min_free_bytes": 500_000_000,
        "eviction": "largest_first",
        "cleanup_interval_s": 43200.0,
        "auto_cleanup": False,
        "aggressive": False,
    }


def test_policy_set_json_prints_the_new_policy(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, _err = run_cli(
        capsys,
        "policy",
        "set",
        "min-free",
        "0",
        "aggressive",
        "yes",
        "--json",
        "--store",
        str(root),
    )

    assert status == 0
    policy = json.loads(out)
    assert (policy["min_free_bytes"], policy["aggressive"]) == (0, True)
    assert policy["max_size_bytes"] is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (["colour", "blue"], "unknown policy setting 'colour'"),
        (["max-size", "lots"], "not a size: 'lots'"),
        (["eviction", "random"], "unknown eviction policy 'random'"),
        (["interval", "soon"], "not a duration: 'soon'"),
        (["aggressive", "maybe"], "not a yes/no value: 'maybe'"),
        (["max-size"], "policy set takes KEY VALUE pairs"),
        ([], "policy set takes KEY VALUE pairs"),
    ],
)
def test_policy_set_with_a_bad_key_or_value_is_a_one_line_error_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], root: Path, settings: list[str], expected: str
) -> None:
    # A good pair before the bad one must not be saved either.
    pairs = ["min-free", "1GB", *settings] if settings else []

    status, out, err = run_cli(capsys, "policy", "set", *pairs, "--store", str(root))

    assert_one_line_error(status, out, err, expected)
    status, out, _err = run_cli(capsys, "policy", "show", "--json", "--store", str(root))
    assert json.loads(out)["min_free_bytes"] == 500_000_000


def test_policy_show_with_settings_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    status, out, err = run_cli(capsys, "policy", "show", "max-size", "--store", str(root))

    assert_one_line_error(status, out, err, "policy show takes no settings")


# -- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_help_of_each_store_command_describes_it_and_its_store_option(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: iris-models {command} ")
    assert "--store DIR" in out
    assert "IRIS_MODELS_HOME" in out


def test_top_level_help_lists_the_store_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in STORE_COMMANDS:
        assert f"    {command} " in out
