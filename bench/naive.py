"""The baseline for bench/ingest.py: what a script written in an afternoon does, one recording at a time.

For each recording: download the media to a temporary file with httpx, upload it with boto3's
``upload_file``, delete the file, DELETE the recording at Twilio. No metadata fetch, no verification, no
state: the least work that moves a recording. Run as a child process of bench/ingest.py so its memory is
measured on its own; reads a JSON job on stdin, prints a JSON result on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import boto3
import httpx
from botocore.config import Config


def main() -> int:
    job = json.load(sys.stdin)
    s3 = boto3.client(
        "s3",
        endpoint_url=job["s3_endpoint_url"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    auth = (job["api_key_sid"], job["api_key_secret"])
    moved = 0
    with httpx.Client(auth=auth, timeout=120.0, trust_env=False) as http:
        started = time.perf_counter()
        for sid in job["sids"]:
            url = f"{job['base_url']}/2010-04-01/Accounts/{job['account_sid']}/Recordings/{sid}"
            fd, path = tempfile.mkstemp(suffix=".wav", dir=job["tmp_dir"])
            try:
                with os.fdopen(fd, "wb") as out, http.stream("GET", url + ".wav") as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes(64 * 1024):
                        out.write(chunk)
                        moved += len(chunk)
                extra = {"ContentType": "audio/wav"}
                s3.upload_file(path, job["bucket"], f"naive/{sid}.wav", ExtraArgs=extra)
            finally:
                os.unlink(path)
            http.delete(url + ".json").raise_for_status()
        elapsed = time.perf_counter() - started
    cpu = time.process_time()
    json.dump({"elapsed": elapsed, "count": len(job["sids"]), "bytes": moved, "cpu": cpu}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
