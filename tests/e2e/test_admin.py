"""`stj admin grant EMAIL`: the account becomes an admin in the server's database (every replica reads it);
an address with no account, or not an address, is one line and exit 2."""

from __future__ import annotations

from serving.accounts import Accounts
from serving.database import Database


def test_admin_grant_makes_an_account_an_admin(stj, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    accounts = Accounts(Database(url))
    user = accounts.create("Ann@Example.com", "correct horse battery")
    assert not accounts.has_role(user.id)
    granted = stj(["admin", "grant", "ann@example.com", "-c", "configs/demo.yaml"], [f"serve.database_url={url}"])
    assert granted.returncode == 0 and granted.stdout.strip() == "stj: Ann@example.com is an admin now"
    assert accounts.has_role(user.id)
    again = stj(["admin", "grant", "ann@example.com", "-c", "configs/demo.yaml"], [f"serve.database_url={url}"])
    assert again.returncode == 0 and accounts.has_role(user.id)  # granting twice is harmless
    nobody = stj(["admin", "grant", "bob@example.com", "-c", "configs/demo.yaml"], [f"serve.database_url={url}"])
    assert (
        nobody.returncode == 2 and nobody.stderr.strip() == "stj: error: no account has the address 'bob@example.com'"
    )
    bad = stj(["admin", "grant", "not-an-address", "-c", "configs/demo.yaml"], [f"serve.database_url={url}"])
    assert bad.returncode == 2 and bad.stderr.startswith("stj: error: ") and len(bad.stderr.strip().splitlines()) == 1
