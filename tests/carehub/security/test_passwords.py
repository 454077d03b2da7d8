"""Passwords are hashed with Argon2 outside the test suite (which keeps a fast hasher)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.hashers import Argon2PasswordHasher

from config.settings import base

ROOT = Path(__file__).resolve().parents[3]


def test_base_settings_hash_with_argon2_first_and_keep_verifying_older_hashes() -> None:
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in base.PASSWORD_HASHERS


def test_the_argon2_hasher_is_installed_and_round_trips() -> None:
    hasher = Argon2PasswordHasher()
    encoded = hasher.encode("correct horse", hasher.salt())
    assert encoded.startswith("argon2$argon2id$")
    assert hasher.verify("correct horse", encoded)
    assert not hasher.verify("wrong horse", encoded)


def test_production_settings_make_argon2_hashes() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "carehub.example",
    }
    code = (
        "import django\n"
        "django.setup()\n"
        "from django.contrib.auth.hashers import make_password\n"
        "print(make_password('a password'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("argon2$argon2id$")
