"""The account: the current user and project, leaving a project, balance, API versions, tokens."""

from __future__ import annotations

from orionfs.client import wire
from orionfs.client.core import check_int
from orionfs.client.resources import ResourcesMixin
from orionfs.client.types import Project, User
from orionfs.exceptions import BadResponse, InvalidAPIVersion, InvalidCredentials, ValidationError

__all__ = ["AccountMixin"]


class AccountMixin(ResourcesMixin):
    """The user, project and authentication methods of OrionSession."""

    # --- projects, users, billing -----------------------------------------------------------
    def leave_project(self, resource: Project, new_owner_id: int | None = None) -> None:
        """Leave a project; its owner must name a member as ``new_owner_id``.

        Raises ValidationError if ``resource`` is not a Project or the id is not an int,
        BadResponse 400 when the owner names no (or a non-member) new owner.
        """
        if not isinstance(resource, Project):
            raise ValidationError(f"leave_project needs a Project, not {resource!r}")
        pid = check_int(resource.id, "the project id")
        if new_owner_id is not None:
            check_int(new_owner_id, "new_owner_id")
        self._request(
            "POST",
            wire.PROJECT_LEAVE,
            path_params={wire.F_ID: pid},
            json={wire.F_NEW_OWNER_ID: new_owner_id},
        )

    def get_user_profile(self) -> User:
        """The authenticated user. Raises InvalidCredentials for a bad token."""
        user = User.from_json(self._json(self._request("GET", wire.USER_ME)), self)
        self._user_cache = user
        return user

    def _me(self) -> User:
        return self._user_cache if self._user_cache is not None else self.get_user_profile()

    def _current_project_id(self) -> int:
        if self.config.project is not None:
            return self.config.project
        pid = getattr(self._me(), wire.F_DEFAULT_PROJECT, None)
        if pid is None:
            raise ValidationError("no project configured and the user has no default project")
        return check_int(pid, "the default project id")

    def get_current_project(self) -> Project:
        """The profile's project (its ``project`` key).

        Raises InvalidCredentials, before any request, when the profile names no project.
        """
        if self.config.project is None:
            raise InvalidCredentials(
                custom_error_msg=f"profile '{self.config.profile}' names no project"
            )
        project = self.get_resource(Project, self.config.project)
        assert isinstance(project, Project)
        return project

    def get_current_balance(self) -> float:
        """The account balance. Raises BadResponse 400 without the cost-accounting capability."""
        response = self._request("GET", wire.BALANCE)
        body = self._json(response)
        try:
            return float(body[wire.F_BALANCE])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadResponse(response, f"balance answer without a {wire.F_BALANCE}") from exc

    def get_default_output_folder(self) -> str:
        """The user's "My Data" folder in the current project: ``/project/<pid>/user/<username>``.

        The project is the profile's, else the user's default project (one request). Raises
        ValidationError when there is neither.
        """
        username = self.config.username or getattr(self._me(), wire.F_USERNAME)
        return wire.MY_DATA_PATH.format(project=self._current_project_id(), username=username)

    def check_api_versions(self) -> dict[str, str]:
        """The server's API versions; raises InvalidAPIVersion if they differ from this client's."""
        if self.orion_versions is None:
            response = self._request("GET", wire.VERSIONS)
            body = self._json(response)
            versions = body.get(wire.F_VERSIONS) if isinstance(body, dict) else None
            if not isinstance(versions, dict):
                raise InvalidAPIVersion(response, "the server did not report its API versions")
            self.orion_versions = versions
        wrong = {
            group: self.orion_versions.get(group)
            for group, version in wire.API_VERSIONS.items()
            if self.orion_versions.get(group) != version
        }
        if wrong:
            raise InvalidAPIVersion(None, f"unsupported Orion API versions: {wrong}")
        return dict(self.orion_versions)

    # --- authentication ---------------------------------------------------------------------
    def is_authenticated(self, reconnect: bool = False) -> bool:
        """Whether the session has credentials: from the config only, unless ``reconnect``.

        With ``reconnect`` a request checks the token; False if the server refuses it (other
        errors propagate).
        """
        if not (self.config.url and self.config.token):
            return False
        if not reconnect:
            return True
        return self.validate_authentication()

    def validate_authentication(self) -> bool:
        """Check the token with a real request: True if the server accepts it, False if it
        refuses it (401) or there is none. Other errors (unreachable server, 5xx...) raise."""
        try:
            self.get_user_profile()
        except InvalidCredentials:
            return False
        return True

    def retrieve_token(self, username: str, password: str) -> str:
        """Get a token with HTTP Basic credentials; the session uses it from now on.

        Raises InvalidCredentials for wrong credentials, ValidationError for empty ones.
        """
        if not username or not isinstance(username, str) or not isinstance(password, str):
            raise ValidationError("retrieve_token needs a username and a password")
        response = self._request("POST", wire.TOKEN, auth=(username, password))
        body = self._json(response)
        token = body.get(wire.F_TOKEN) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse(response, "the token answer holds no token")
        self.config = self.config.replace(token=token, username=username)
        self._user_cache = None
        return token
