"""GIT sources: resolve a reference to a commit, fetch it shallowly into a cache by commit, never leak the token."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from queue_core.masking import Masker
from workers.sources.base import Materialized, SourceContext, SourceError, cached_tree, locate

__all__ = ["materialize_git", "resolve_reference"]

GIT_TIMEOUT_SECONDS = 300
DEFAULT_USERNAME = "x-access-token"  # what GitHub and most forges accept beside a token
TOKEN_VAR = "JOBLEDGER_GIT_TOKEN"
USERNAME_VAR = "JOBLEDGER_GIT_USERNAME"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")

# Git asks this program for the user name and the password; it answers from its own environment,
# so the token is never on a command line (visible in /proc/<pid>/cmdline) nor in .git/config.
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$JOBLEDGER_GIT_USERNAME" ;;
  *) printf '%s\\n' "$JOBLEDGER_GIT_TOKEN" ;;
esac
"""


class _Git:
    """Runs git with argv lists (no shell), no prompts, https and file transports only, no credential helper."""

    def __init__(self, cache: Path, username: str | None, token: str | None, masker: Masker) -> None:
        self.masker = masker
        askpass = cache / "git-askpass.sh"
        if not askpass.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            staging = cache / f".askpass-{os.getpid()}"
            staging.write_text(ASKPASS)
            staging.chmod(stat.S_IRWXU)
            os.replace(staging, askpass)
        self.env: Mapping[str, str] = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": str(askpass),
            "GIT_CONFIG_NOSYSTEM": "1",
            USERNAME_VAR: username or DEFAULT_USERNAME,
            TOKEN_VAR: token or "",
        }

    def run(self, args: list[str], what: str, cwd: Path | None = None) -> str:
        command = [
            "git",
            # Only the transports spec.py accepts: https and file; never ext::, fd::, ssh or git://.
            "-c", "protocol.allow=never",
            "-c", "protocol.https.allow=always",
            "-c", "protocol.file.allow=always",
            "-c", "protocol.ext.allow=never",
            "-c", "credential.helper=",
            *args,
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=GIT_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SourceError(f"{what} failed: no answer within {GIT_TIMEOUT_SECONDS}s") from None
        except OSError as exc:
            raise SourceError(f"{what} failed: cannot run git: {exc.strerror}") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            detail = lines[-1] if lines else f"exit code {done.returncode}"
            raise SourceError(self.masker.mask(f"{what} failed: {detail}"))
        return done.stdout.decode("utf-8", "replace")


def resolve_reference(git: _Git, url: str, reference: str) -> str | None:
    """The commit a branch, tag, ``HEAD`` (empty reference) or full SHA names; None for a short SHA."""
    if _FULL_SHA.fullmatch(reference):
        return reference
    listing = git.run(["ls-remote", "--", url], "git ls-remote")
    refs: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    wanted = reference or "HEAD"
    # A peeled tag (^{}) names the commit an annotated tag points at; it wins over the tag object.
    for name in (f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}", f"refs/heads/{wanted}", f"{wanted}^{{}}", wanted):
        if name in refs:
            return refs[name]
    if _SHORT_SHA.fullmatch(reference):
        return None
    raise SourceError(f"reference {wanted!r} is not a branch, tag or commit of the repository")


def _fetch(git: _Git, url: str, commit: str | None, reference: str, target: Path) -> str:
    """Fetch into a new repository at ``target`` and check the commit out; returns the full commit."""
    git.run(["init", "-q", str(target)], "git init")
    wanted = commit or reference
    try:
        # Shallow: just the commit (servers with protocol v2 or allowReachableSHA1InWant allow it).
        git.run(["fetch", "-q", "--depth", "1", "--no-tags", "--", url, wanted], "git fetch", cwd=target)
        rev = "FETCH_HEAD"
    except SourceError:
        git.run(["fetch", "-q", "--no-tags", "--", url, "+refs/heads/*:refs/remotes/origin/*"], "git fetch", cwd=target)
        git.run(["fetch", "-q", "--", url, "+refs/tags/*:refs/tags/*"], "git fetch tags", cwd=target)
        rev = wanted
    try:
        full = git.run(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], "git rev-parse", cwd=target).strip()
    except SourceError:
        raise SourceError(f"reference {reference!r} is not a commit of the repository") from None
    if commit is not None and full != commit:
        raise SourceError(f"the repository gave commit {full} for {commit}")
    git.run(["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", full], "git checkout", cwd=target)
    return full


def materialize_git(ctx: SourceContext, sdef: dict[str, Any], location: str) -> Materialized:
    """The repository at its reference, from the cache when that commit was fetched before."""
    token_ref = sdef.get("token")
    token = ctx.secrets[token_ref["secret"]] if token_ref else None
    url, reference = sdef["repoUrl"], sdef.get("reference", "")
    cache = ctx.cache / "git"
    git = _Git(cache, sdef.get("username"), token, Masker([token] if token else []))
    repo_cache = cache / hashlib.sha256(url.encode()).hexdigest()
    commit = resolve_reference(git, url, reference)
    if commit is None:
        commit = _fetch_short(git, url, reference, repo_cache)
    resolved = commit

    def build(path: Path) -> None:
        _fetch(git, url, resolved, reference, path)

    cached_tree(repo_cache / commit, build)
    return locate(repo_cache / commit, ctx.scratch, location, commit)


def _fetch_short(git: _Git, url: str, reference: str, repo_cache: Path) -> str:
    """A short SHA is known only after a full fetch; the checkout then joins the cache under its commit."""
    repo_cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".short-", dir=repo_cache))
    try:
        commit = _fetch(git, url, None, reference, staging / "tree")
        cached_tree(repo_cache / commit, lambda path: os.rename(staging / "tree", path))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return commit
