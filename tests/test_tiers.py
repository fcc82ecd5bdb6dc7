"""Tier planning: the pure comparison of a desired deployment with the server's view."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vastbuild.vast import tiers
from vastbuild.vast.last_deploy import LastDeploy, read_last_deploy, state_path, write_last_deploy
from vastbuild.vast.tiers import ServerView, Snapshot, action_mismatch, decide_tier

ENV = "-p 3000:3000/tcp -p 8000:8000/tcp -e REPORT_ADDR=https://run.vast.ai -e ENV_PATH=/venv"
SEARCH = "verified=true rentable=true rented=false gpu_name in RTX_4090,L40S gpu_ram>=24"
CONFIG = {
    "name": "qwen-chat", "image": "vastai/vllm:1", "file_hash": "a" * 64, "file_size": 10,
    "env": ENV, "tag": "default", "search_params": SEARCH, "storage": 80,
    "cold_workers": 1, "max_workers": 4, "target_util": 0.8,
}
WORKER_CONFIG = {"name": "qwen-chat", "pip_installs": ["vllm==0.6.3"], "apt_gets": [],
                 "envs": [["MODEL_NAME", "Qwen"], ["TOKEN", "s3cret"]], "runs": ["mkdir -p /d"]}
DESIRED = Snapshot(
    name="qwen-chat", tag="default", file_hash="a" * 64, config=CONFIG,
    components={"code": "c1", "copies": "k1", "requirements": "r1", "config": "g1"},
    manifest={"./config.json": "j1", "./deployment.py": "d1", "/app/lib/common/timing.py": "t1"},
    worker_config=WORKER_CONFIG, code_name="app.py")
RECORD = {"id": 7, "name": "qwen-chat", "tag": "default", "endpoint_id": 3,
          "image": "vastai/vllm:1", "env": ENV, "search_params": SEARCH, "storage": 80.0,
          "file_hash": "a" * 64, "ttl": None, "current_version_id": 2}
ENDPOINT = {"id": 3, "cold_workers": 1, "max_workers": 4, "target_util": 0.8, "min_load": 0.0,
            "cold_mult": 2.5, "inactivity_timeout": None}


def desired_with(**config: object) -> Snapshot:
    return replace(DESIRED, config={**CONFIG, **config},
                   file_hash=str(config.get("file_hash", DESIRED.file_hash)))


def test_a_name_the_server_lacks_is_tier_4_created():
    result = decide_tier(DESIRED, ServerView(record=None))
    assert (result.tier, result.action, result.certain) == (4, "created", True)
    assert result.reasons == ("new deployment: qwen-chat:default is not on the server",)


def test_a_new_tag_names_the_tags_the_server_has():
    result = decide_tier(replace(DESIRED, tag="prod"), ServerView(record=None, tags=("default",)))
    assert result.tier == 4
    assert result.reasons[0].startswith("new tag: prod")


def test_nothing_changed_is_tier_0_exists():
    result = decide_tier(DESIRED, ServerView(record=RECORD, endpoint=ENDPOINT))
    assert (result.tier, result.action, result.certain) == (0, "exists", True)
    assert result.reasons == ("nothing changed",)


def test_an_autoscale_change_is_tier_1_and_names_the_setting():
    result = decide_tier(desired_with(max_workers=12), ServerView(record=RECORD, endpoint=ENDPOINT))
    assert (result.tier, result.action) == (1, "autoscale_update")
    assert result.reasons == ("autoscale: max_workers 4 → 12",)


def test_a_setting_left_out_at_its_default_is_not_a_change():
    assert decide_tier(DESIRED, ServerView(record=RECORD, endpoint=ENDPOINT)).tier == 0


def test_a_setting_left_out_but_not_at_its_default_returns_to_it():
    result = decide_tier(DESIRED, ServerView(record=RECORD, endpoint={**ENDPOINT, "min_load": 10}))
    assert (result.tier, result.reasons) == (
        1, ("autoscale: min_load 10 → 0 (not set in the Vastfile: the server's default)",))


def test_ttl_alone_is_tier_1():
    result = decide_tier(desired_with(ttl=7200), ServerView(record=RECORD, endpoint=ENDPOINT))
    assert (result.tier, result.reasons) == (1, ("ttl: none → 7200",))


def test_version_label_is_compared_with_the_current_version():
    versions = ({"id": 1, "version_label": "v1"}, {"id": 2, "version_label": "v2"})
    same = decide_tier(desired_with(version_label="v2"),
                ServerView(record=RECORD, endpoint=ENDPOINT, versions=versions))
    assert same.tier == 0
    bumped = decide_tier(desired_with(version_label="v3"),
                  ServerView(record=RECORD, endpoint=ENDPOINT, versions=versions))
    assert (bumped.tier, bumped.reasons) == (1, ("version: v2 → v3",))


def test_a_version_label_nobody_can_compare_is_uncertain():
    result = decide_tier(desired_with(version_label="v3"),
                  ServerView(record=RECORD, endpoint=ENDPOINT, versions=({"id": 2},)))
    assert result.certain is False
    assert any(reason.startswith("version: cannot compare") for reason in result.reasons)


def test_content_change_without_a_local_record_says_which_files_are_unknown():
    result = decide_tier(desired_with(file_hash="b" * 64),
                         ServerView(record=RECORD, endpoint=ENDPOINT))
    assert (result.tier, result.action, result.certain) == (2, "soft_update", True)
    assert "which files changed is unknown" in result.reasons[0]


def test_a_file_hash_that_is_not_a_string_is_still_a_content_change():
    result = decide_tier(DESIRED, ServerView(record={**RECORD, "file_hash": 7}, endpoint=ENDPOINT))
    assert result.tier == 2 and "file_hash 7 → aaaaaaaaaaaa" in result.reasons[0]


def test_content_change_with_a_local_record_names_files_and_requirements():
    last = DESIRED
    new = replace(
        DESIRED, file_hash="b" * 64, config={**CONFIG, "file_hash": "b" * 64},
        manifest={**DESIRED.manifest, "./deployment.py": "d2", "./config.json": "j2",
                  "/app/new.txt": "n"},
        worker_config={**WORKER_CONFIG, "pip_installs": ["vllm==0.6.4"],
                       "envs": [["MODEL_NAME", "Qwen"], ["TOKEN", "other"]]})
    result = decide_tier(new, ServerView(record=RECORD, endpoint=ENDPOINT), last, 7)
    assert result.tier == 2
    assert "code: app.py changed" in result.reasons
    assert "copy: /app/new.txt added" in result.reasons
    assert "requirements: pip + vllm==0.6.4; - vllm==0.6.3" in result.reasons
    assert "config: ENV TOKEN changed" in result.reasons
    assert not any("s3cret" in reason or "other" in reason for reason in result.reasons)


def test_a_package_member_is_named_under_the_package():
    last = replace(DESIRED, code_name="embedder",
                   manifest={"./config.json": "j", "./deployment/__init__.py": "i",
                             "./deployment/model.py": "m1"})
    new = replace(last, file_hash="b" * 64,
                  manifest={**last.manifest, "./deployment/model.py": "m2"})
    result = decide_tier(new, ServerView(record=RECORD, endpoint=ENDPOINT), last, 7)
    assert result.reasons == ("code: embedder/model.py changed",)


def test_a_local_record_of_another_version_is_not_trusted_for_files():
    stale = replace(DESIRED, file_hash="c" * 64)
    result = decide_tier(desired_with(file_hash="b" * 64),
                         ServerView(record=RECORD, endpoint=ENDPOINT), stale, 7)
    assert "which files changed is unknown" in result.reasons[0]


@pytest.mark.parametrize("config, reason", [
    ({"image": "vastai/vllm:2"}, "image changed: vastai/vllm:1 → vastai/vllm:2"),
    ({"storage": 100}, "storage changed: 80 → 100 GB"),
    ({"env": ENV.replace("8000", "8001")},
     "docker options changed: + -p 8001:8001/tcp; - -p 8000:8000/tcp"),
    ({"search_params": SEARCH.replace("RTX_4090,L40S", "L40S")},
     "search changed: + gpu_name in L40S; - gpu_name in RTX_4090,L40S"),
])
def test_infrastructure_changes_are_tier_3(config, reason):
    result = decide_tier(desired_with(**config), ServerView(record=RECORD, endpoint=ENDPOINT))
    assert (result.tier, result.action, result.reasons) == (3, "hard_update", (reason,))


def test_the_highest_tier_wins_and_every_reason_is_kept():
    result = decide_tier(desired_with(image="vastai/vllm:2", max_workers=9, file_hash="b" * 64),
                  ServerView(record=RECORD, endpoint=ENDPOINT))
    assert result.tier == 3
    assert len(result.reasons) == 3


def test_a_server_that_hides_a_field_falls_back_to_the_local_record():
    record = {k: v for k, v in RECORD.items() if k != "image"}
    last = replace(DESIRED, config={**CONFIG, "image": "vastai/vllm:0"})
    result = decide_tier(DESIRED, ServerView(record=record, endpoint=ENDPOINT), last, 7)
    assert result.reasons == ("image changed: vastai/vllm:0 → vastai/vllm:1 "
                              "(per the local record of the last deploy)",)


def test_without_server_field_or_record_the_plan_says_it_cannot_know():
    record = {k: v for k, v in RECORD.items() if k != "image"}
    result = decide_tier(DESIRED, ServerView(record=record, endpoint=None))
    assert result.certain is False
    assert any(r.startswith("image: cannot compare") for r in result.reasons)
    assert any(r.startswith("autoscale: cannot compare") for r in result.reasons)


def test_action_mismatch_is_a_warning_only_when_they_differ():
    predicted = decide_tier(DESIRED, ServerView(record=RECORD, endpoint=ENDPOINT))
    assert action_mismatch(predicted, "exists") is None
    warning = action_mismatch(predicted, "soft_update")
    assert warning and "'soft_update' (Tier 2)" in warning and "'exists' (Tier 0)" in warning


def test_actions_cover_every_tier():
    assert [tiers.ACTIONS[t] for t in range(5)] == [
        "exists", "autoscale_update", "soft_update", "hard_update", "created"]


def test_state_round_trips_and_is_keyed_by_api_name_and_tag(tmp_path):
    record = LastDeploy(snapshot=DESIRED, api_url="http://127.0.0.1:1/", deployment_id=7,
                        endpoint_id=3, workergroup_id=None, action="created",
                        deployed_at=1.0)
    path = write_last_deploy(tmp_path, record)
    assert path == state_path(tmp_path, "http://127.0.0.1:1", "qwen-chat", "default")
    assert read_last_deploy(tmp_path, "http://127.0.0.1:1", "qwen-chat", "default") == \
        replace(record, api_url="http://127.0.0.1:1")
    assert read_last_deploy(tmp_path, "http://127.0.0.1:2", "qwen-chat", "default") is None
    assert read_last_deploy(tmp_path, "http://127.0.0.1:1", "qwen-chat", "prod") is None


def test_a_damaged_state_file_is_ignored(tmp_path):
    path = state_path(tmp_path, "http://x", "n", "t")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_last_deploy(tmp_path, "http://x", "n", "t") is None


def test_a_setting_the_last_deploy_made_and_this_one_drops_is_tier_1():
    last = DESIRED
    dropped = replace(DESIRED, config={k: v for k, v in CONFIG.items() if k != "max_workers"})
    result = decide_tier(dropped, ServerView(record=RECORD, endpoint=None), last, 7)
    assert result.tier == 1
    assert "autoscale: max_workers 4 → 20 (not set in the Vastfile: the server's default)" in \
        result.reasons
