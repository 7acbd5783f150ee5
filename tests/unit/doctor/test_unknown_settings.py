"""Unknown SONGQUEUE_* variables, from the environment and .env, with the likeliest intended name."""

from __future__ import annotations

from producer.core.fleet import mask_url
from producer.core.unknown_settings import unknown_variables


def test_typos_get_a_did_you_mean_and_known_names_pass(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SONGQUEUE_CALLBACK_SECRT=x\nSONGQUEUE_UDIO_API_KEY=k\nOTHER=1\n")
    environ = {"SONGQUEUE_BROKR_URL": "x", "songqueue_log_json": "true", "SONGQUEUE_SANDBOX_API_KEY": "k",
               "SONGQUEUE_ZZZZZZZZ": "1", "PATH": "/bin"}
    found = {v.name: v for v in unknown_variables(environ, env_file)}
    assert set(found) == {"SONGQUEUE_BROKR_URL", "SONGQUEUE_CALLBACK_SECRT", "SONGQUEUE_ZZZZZZZZ"}
    assert found["SONGQUEUE_BROKR_URL"].suggestion == "SONGQUEUE_BROKER_URL"
    assert found["SONGQUEUE_CALLBACK_SECRT"].source == str(env_file)
    assert found["SONGQUEUE_CALLBACK_SECRT"].suggestion == "SONGQUEUE_CALLBACK_SECRET"
    assert found["SONGQUEUE_ZZZZZZZZ"].suggestion is None
    assert "did you mean SONGQUEUE_BROKER_URL?" in found["SONGQUEUE_BROKR_URL"].describe()


def test_passwords_in_urls_are_masked():
    assert mask_url("redis://:pw@host:6380/1") == "redis://:****@host:6380/1"
    assert mask_url("amqp://user:pw@rabbit/vh") == "amqp://user:****@rabbit/vh"
    assert mask_url("redis://host/0") == "redis://host/0"
