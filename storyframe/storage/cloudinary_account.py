"""The settings of one CLOUDINARY_URL, read without the SDK's global configuration, and handed
to each SDK call as per-call options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

_DEFAULT_TIMEOUT: Final = 60.0
_SIGNATURE_ALGORITHMS: Final = frozenset({"sha1", "sha256"})
_QUERY_OPTIONS: Final = frozenset(
    {"upload_prefix", "secure_distribution", "signature_algorithm", "signature_version", "timeout"}
)


@dataclass(frozen=True, slots=True)
class Account:
    """The settings of one CLOUDINARY_URL, as SDK per-call options."""

    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    upload_prefix: str | None
    secure_distribution: str | None
    signature_algorithm: str
    signature_version: int
    timeout: float

    @classmethod
    def parse(cls, url: str) -> Account:
        """Read `cloudinary://<api_key>:<api_secret>@<cloud_name>[/<secure_distribution>][?…]`."""
        parts = urlsplit(url)
        if parts.scheme != "cloudinary":
            raise ValueError("a Cloudinary URL starts with cloudinary://")
        try:
            port = parts.port
        except ValueError:
            port = -1
        cloud_name, api_key, api_secret = parts.hostname, parts.username, parts.password
        if not cloud_name or not api_key or not api_secret or port is not None:
            raise ValueError(
                "a Cloudinary URL looks like cloudinary://<api_key>:<api_secret>@<cloud_name>"
            )
        if parts.fragment:
            raise ValueError("a Cloudinary URL has no #fragment")
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        unknown = set(query) - _QUERY_OPTIONS
        if unknown:
            raise ValueError(
                f"unsupported Cloudinary URL options {sorted(unknown)}; "
                f"supported: {sorted(_QUERY_OPTIONS)}"
            )
        options = {key: values[-1] for key, values in query.items()}

        upload_prefix = options.get("upload_prefix") or None
        if upload_prefix is not None:
            prefix_parts = urlsplit(upload_prefix)
            if prefix_parts.scheme not in ("http", "https") or not prefix_parts.netloc:
                raise ValueError("upload_prefix must be an http(s) URL")
            upload_prefix = upload_prefix.rstrip("/")
        algorithm = options.get("signature_algorithm", "sha1")
        if algorithm not in _SIGNATURE_ALGORITHMS:
            raise ValueError(f"signature_algorithm must be one of {sorted(_SIGNATURE_ALGORITHMS)}")
        try:
            version = int(options.get("signature_version", "2"))
            timeout = float(options.get("timeout", _DEFAULT_TIMEOUT))
        except ValueError:
            raise ValueError("signature_version and timeout must be numbers") from None
        if version not in (1, 2) or not timeout > 0:
            raise ValueError("signature_version must be 1 or 2, timeout positive")
        # A path names a private CDN distribution, as the SDK reads it.
        distribution = parts.path.lstrip("/") or options.get("secure_distribution") or None
        return cls(
            cloud_name=cloud_name,
            api_key=unquote(api_key),
            api_secret=unquote(api_secret),
            upload_prefix=upload_prefix,
            secure_distribution=distribution,
            signature_algorithm=algorithm,
            signature_version=version,
            timeout=timeout,
        )

    def api_options(self) -> dict[str, Any]:
        """Options for Upload and Admin API calls, each overriding a global setting."""
        return {
            "cloud_name": self.cloud_name,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            # None means the SDK's default host, https://api.cloudinary.com.
            "upload_prefix": self.upload_prefix,
            "oauth_token": None,
            "signature_algorithm": self.signature_algorithm,
            "signature_version": self.signature_version,
            "timeout": self.timeout,
        }

    def url_options(self) -> dict[str, Any]:
        """Options for building delivery URLs, each overriding a global setting."""
        return {
            "cloud_name": self.cloud_name,
            "secure": True,
            "private_cdn": self.secure_distribution is not None,
            "secure_distribution": self.secure_distribution,
            "cname": None,
            "cdn_subdomain": False,
            "secure_cdn_subdomain": False,
            "sign_url": False,
            "auth_token": False,
            "shorten": False,
            "use_root_path": False,
            "force_version": True,
            "use_fetch_format": False,
            "responsive_width": False,
            "dpr": None,
        }
