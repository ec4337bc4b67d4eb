"""The floor of the cold-start benchmark: a bare functions-framework function that reads one
Firestore document (what the cheapest real request does), with nothing of ours around it."""
import functions_framework
from google.cloud import firestore

_db = []


@functions_framework.http
def bare(request):
    if not _db:
        _db.append(firestore.Client())
    snap = _db[0].collection("cmsPages").document("about").get()
    return {"ok": True, "found": snap.exists}
