"""The one visibility policy, table-driven over the demo roles."""

from __future__ import annotations

import pytest

from crm import actions
from crm.visibility import AccountNotFound, can_see_account, get_visible_account, visible_accounts
from tests.conftest import Cast, make_account

# (who, sees East account owned by alice, sees West account owned by erin)
TABLE = [
    ("owner", True, False),
    ("teammate", True, False),
    ("outsider", False, True),
    ("support", True, True),
    ("manager", True, False),
    ("admin", True, True),
]


@pytest.mark.parametrize(("who", "sees_east", "sees_west"), TABLE)
def test_visibility_by_role(cast: Cast, who: str, sees_east: bool, sees_west: bool) -> None:
    user = getattr(cast, who)
    assert can_see_account(user, cast.account.pk) is sees_east
    assert can_see_account(user, cast.west_account.pk) is sees_west
    expected = {
        a.pk for a, seen in ((cast.account, sees_east), (cast.west_account, sees_west)) if seen
    }
    assert set(visible_accounts(user).values_list("pk", flat=True)) == expected


def test_account_team_grant_opens_one_account(cast: Cast) -> None:
    actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    assert can_see_account(cast.outsider, cast.account.pk)
    other_east = make_account(cast.admin, cast.teammate, "Other East")
    assert not can_see_account(cast.outsider, other_east.pk)


def test_revoking_a_grant_closes_the_account(cast: Cast) -> None:
    actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    assert not can_see_account(cast.outsider, cast.account.pk)


def test_deactivated_user_sees_nothing(cast: Cast) -> None:
    cast.owner.is_active = False
    cast.owner.save(update_fields=["is_active"])
    assert not visible_accounts(cast.owner).exists()


def test_anonymous_sees_nothing(cast: Cast) -> None:
    from django.contrib.auth.models import AnonymousUser

    assert not visible_accounts(AnonymousUser()).exists()


def test_merged_and_archived_accounts_are_hidden_from_everyone(cast: Cast) -> None:
    from django.utils import timezone

    cast.west_account.archived_at = timezone.now()
    cast.west_account.save(update_fields=["archived_at"])
    assert not can_see_account(cast.admin, cast.west_account.pk)


def test_not_yours_and_missing_raise_the_same_error(cast: Cast) -> None:
    with pytest.raises(AccountNotFound) as hidden:
        get_visible_account(cast.outsider, cast.account.pk)
    with pytest.raises(AccountNotFound) as missing:
        get_visible_account(cast.outsider, 999_999)
    assert str(hidden.value) == str(missing.value)


def test_manager_of_no_team_sees_only_own_accounts(cast: Cast) -> None:
    cast.east.managers.clear()
    assert not can_see_account(cast.manager, cast.account.pk)


def test_a_proof_from_get_visible_account_stands_only_for_its_user_and_briefly(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm import visibility

    account = visibility.get_visible_account(cast.owner, cast.account.pk)
    visibility.require_visible_account(cast.owner, account)  # proven a moment ago
    with pytest.raises(visibility.AccountNotFound):
        visibility.require_visible_account(cast.outsider, account)  # someone else: asked again
    monkeypatch.setattr(visibility, "PROOF_SECONDS", 0.0)
    cast.owner.is_active = False
    cast.owner.save(update_fields=["is_active"])
    with pytest.raises(visibility.AccountNotFound):
        visibility.require_visible_account(cast.owner, account)  # stale proof: asked again


def test_who_can_see_many_accounts_reads_the_policy_backwards(cast: Cast) -> None:
    """`people_who_can_see_each` (one query for many accounts) agrees with `visible_accounts`
    for every user and account: a grant, a manager, an inactive user, an archived account."""
    from django.utils import timezone

    from crm.models import User
    from crm.visibility import people_who_can_see, people_who_can_see_each

    granted = make_account(cast.admin, cast.teammate, "Other East")
    actions.grant_account_access(actor=cast.admin, account=granted, user=cast.outsider)
    archived = make_account(cast.admin, cast.owner, "Gone")
    archived.archived_at = timezone.now()
    archived.save(update_fields=["archived_at"])
    cast.teammate.is_active = False
    cast.teammate.save(update_fields=["is_active"])
    accounts = [cast.account, cast.west_account, granted, archived]
    users = list(User.objects.all())
    among = {user.pk for user in users} - {cast.support.pk}  # narrowed: carol is not asked about
    seen = people_who_can_see_each({a.pk for a in accounts} | {999_999}, among)
    for account in accounts:
        expected = {u.pk for u in users if visible_accounts(u).filter(pk=account.pk).exists()}
        assert seen[account.pk] == expected & among, account.name
        assert set(people_who_can_see(account).values_list("pk", flat=True)) == expected
    assert seen[999_999] == set()
    assert seen[cast.west_account.pk] == {cast.outsider.pk, cast.admin.pk}


def test_get_visible_account_agrees_with_the_policy_for_everyone_in_one_statement(
    cast: Cast,
) -> None:
    """`get_visible_account` runs the policy's compiled SQL by hand: it must answer what
    `visible_accounts` answers for every user and account (a grant, a manager, an inactive user,
    an archived and a merged account), with the owner and team loaded in that one statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from crm.models import Account, User

    granted = make_account(cast.admin, cast.teammate, "Other East")
    actions.grant_account_access(actor=cast.admin, account=granted, user=cast.outsider)
    archived = make_account(cast.admin, cast.owner, "Gone")
    Account.objects.filter(pk=archived.pk).update(archived_at=timezone.now())
    merged = make_account(cast.admin, cast.owner, "Merged away")
    Account.objects.filter(pk=merged.pk).update(merged_into=cast.account)
    User.objects.filter(pk=cast.teammate.pk).update(is_active=False)
    accounts = list(Account.objects.all())
    for user in User.objects.all():
        seen = set(visible_accounts(user).values_list("pk", flat=True))
        for account in accounts:
            if account.pk not in seen:
                with pytest.raises(AccountNotFound):
                    get_visible_account(user, account.pk)
                continue
            with CaptureQueriesContext(connection) as queries:
                got = get_visible_account(user, str(account.pk))
                names = (got.name, got.owner.username, got.team.name)
            assert len(queries) == 1, (user.username, account.name)
            assert got.pk == account.pk
            assert names == (account.name, account.owner.username, account.team.name)
            assert got.created_at == account.created_at  # converted as the ORM converts it
    assert {pk for pk in (archived.pk, merged.pk)}.isdisjoint(
        visible_accounts(cast.admin).values_list("pk", flat=True)
    )


@pytest.mark.parametrize("odd", ["0", "-1", str(2**63), "1e3", "", None])
def test_an_id_that_names_no_account_is_not_found(cast: Cast, odd: str | None) -> None:
    with pytest.raises(AccountNotFound):
        get_visible_account(cast.admin, odd)  # type: ignore[arg-type]


def test_the_checks_of_every_api_call_are_prepared_once_for_every_user(cast: Cast) -> None:
    """The token check and the one-account question run as prepared statements on PostgreSQL:
    their values are parameters, so users of one role share one statement."""
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from config.authentication import TokenAuthentication

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: PostgreSQL")

    def executions() -> dict[str, int]:
        """Name -> executions of the checks prepared on this connection (earlier tests on it may
        have prepared the same ones)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE %s OR statement LIKE %s",
                ['%FROM "crm_account" a INNER JOIN%', '%FROM "authtoken_token" k%'],
            )
            return dict(cursor.fetchall())

    before = executions()
    for user in (cast.owner, cast.teammate):
        key = Token.objects.create(user=user).key
        for _ in range(2):
            assert TokenAuthentication().authenticate_credentials(key)[0] == user
            assert get_visible_account(user, cast.account.pk) == cast.account
    after = executions()
    assert sum(after.values()) - sum(before.values()) == 8
    assert len(set(after) - set(before)) <= 2  # the token's statement and the rep's policy
