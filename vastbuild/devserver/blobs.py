"""The blob routes, the server's stand-in for S3: a presigned form upload and a signed GET.

Neither takes an API key: the signature is the permission, and it names one
object key, which names one account and one content hash. The uploaded blob's
size must be the registered ``file_size`` (the policy's exact range). Its
SHA-256 is not checked against ``file_hash``: that hash is vastbuild's content
hash over the tar framing, not a digest of the compressed bytes.
"""

from __future__ import annotations

import time

from vastbuild.devserver.context import Context
from vastbuild.devserver.database import parse_blob_key
from vastbuild.devserver.httpbody import BodyError, iter_body
from vastbuild.devserver.messages import Request, Response, s3_error
from vastbuild.devserver.signing import S3Error, verify_download, verify_post
from vastbuild.devserver.uploads import receive_upload


def upload(context: Context, request: Request) -> Response:
    try:
        received = receive_upload(
            iter_body(request.body_stream, request.headers),
            request.headers.get("Content-Type", ""),
            lambda fields: verify_post(context.secret, fields),
            context.database.tmp_dir)
    except S3Error as exc:
        return s3_error(exc.status, exc.code, exc.message, close=True)
    except BodyError as exc:
        return s3_error(exc.status, "IncompleteBody", exc.message, close=True)
    owner = parse_blob_key(received.grant.key)
    if owner is None or not context.database.account_exists(owner[0]):
        received.path.unlink(missing_ok=True)
        return s3_error(403, "AccessDenied", "the policy names no blob of this server")
    context.database.commit_blob(owner[0], owner[1], received.path, received.size, time.time())
    return Response(204, content_type=None)


def download(context: Context, request: Request) -> Response:
    key = f"{request.params[0]}/{request.params[1]}"
    try:
        verify_download(context.secret, key, request.query.get("expires"),
                        request.query.get("signature"))
    except S3Error as exc:
        return s3_error(exc.status, exc.code, exc.message)
    owner = parse_blob_key(key)
    if owner is None or not context.database.has_blob(*owner):
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(200, content_type="application/gzip", file=context.database.blob_path(*owner))
