"""Share links: a stable public link to one media item, `<media URL>/s/<token>.<ext>`, that
redirects to a fresh short-lived signed download URL (social tools want a plain link with a file
extension; a signed URL expires and is too long to post).

One link per item while it is not revoked, in the internal collection `mediaShares` (document
id = the media id, so creating it twice in parallel still gives one link: a transaction on that
document). The token is 192 random bits (unguessable); revoking deletes the document, so the
token stops working at once and the next share gets a new one. Deleting the media deletes its
share; a share whose media is gone answers 404 as well."""
from __future__ import annotations

import re
import secrets

from shared import clock, db
from shared.db import Repo
from shared.media import sniff
from shared.models import Doc, Media

TOKEN = re.compile(r"^([A-Za-z0-9_-]{32})\.([a-z0-9]{1,10})$")


class MediaShare(Doc):
    collection = "mediaShares"  # document id = media id
    mediaId: str
    userId: str
    token: str
    ext: str
    createdAt: int


shares = Repo(MediaShare)


@db.transactional
def ensure(tx, media: Media) -> tuple[MediaShare, bool]:
    """The item's share (True when made now)."""
    found = shares.get(media.id, tx)
    if found is not None:
        return found, False
    share = MediaShare(_id=media.id, mediaId=media.id, userId=media.userId, token=secrets.token_urlsafe(24),
                       ext=sniff.extension(media.mimeType), createdAt=clock.now_ms())
    shares.create(share, tx)
    return share, True


def find(file_name: str) -> MediaShare | None:
    """The share a link's last segment (`<token>.<ext>`) names; None for anything else."""
    m = TOKEN.fullmatch(file_name)
    if m is None:
        return None
    share = shares.first(token=m.group(1))
    if share is None or share.ext != m.group(2):
        return None
    return share


def revoke(media_id: str) -> bool:
    """Delete the item's share; False when it had none."""
    if shares.get(media_id) is None:
        return False
    shares.delete(media_id)
    return True
