"""TwilioGateway against the Twilio simulator over real HTTP."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from callvault.errors import InvalidInput, InvalidSid, MediaNotReady, NotAudio, TwilioError, TwilioRateLimited
from callvault.settings import Settings
from callvault.twilio.gateway import TwilioAccount, TwilioGateway
from callvault.twilio.rest import BaseUrlHttpClient
from callvault.twilio.retry_after import parse_retry_after
from callvault.twilio.simulator import SimulatorServer

MB = 1024 * 1024


def make_gateway(simulator: SimulatorServer, *, use_api_key: bool = True, max_bytes: int = 64 * MB):
    account = simulator.twilio_account(use_api_key=use_api_key)
    return TwilioGateway(account, timeout_seconds=5.0, max_media_bytes=max_bytes)


def download(gateway: TwilioGateway, simulator: SimulatorServer, sid: str, media_format: str = "wav"):
    with gateway.open_media(simulator.account_sid, sid, media_format) as media:
        return media.content_type, media.content_length, b"".join(media.chunks)


# -- account --------------------------------------------------------------------------------------------


def test_rest_credentials_prefer_the_api_key_and_repr_hides_secrets():
    with_key = TwilioAccount("AC" + "1" * 32, "token-secret", "SK" + "2" * 32, "key-secret", "http://x")
    without_key = TwilioAccount("AC" + "1" * 32, "token-secret", None, None, "http://x")
    assert with_key.rest_credentials == ("SK" + "2" * 32, "key-secret")
    assert without_key.rest_credentials == ("AC" + "1" * 32, "token-secret")
    assert "secret" not in repr(with_key)


def test_account_from_settings_is_none_in_demo_mode_and_complete_otherwise():
    assert TwilioAccount.from_settings(Settings()) is None
    settings = Settings(
        twilio_account_sid="AC" + "a" * 32,
        twilio_auth_token="tok",
        twilio_api_key_sid="SK" + "b" * 32,
        twilio_api_key_secret="sec",
        twilio_api_base_url="http://127.0.0.1:9/",
        public_url="https://vault.example.com",
    )
    account = TwilioAccount.from_settings(settings)
    assert account == TwilioAccount("AC" + "a" * 32, "tok", "SK" + "b" * 32, "sec", "http://127.0.0.1:9")


# -- metadata -------------------------------------------------------------------------------------------


def test_fetch_metadata_returns_twilios_fields_with_a_utc_date(simulator, twilio_gateway):
    created = datetime(2024, 3, 5, 14, 30, 7, tzinfo=UTC)
    rec = simulator.add_recording(duration_seconds=5, channels=2, date_created=created, source="DialVerb")
    meta = twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
    assert meta is not None
    assert (meta.sid, meta.account_sid, meta.call_sid) == (rec.sid, simulator.account_sid, rec.call_sid)
    assert meta.date_created == created and meta.date_created.tzinfo is not None
    assert (meta.duration_seconds, meta.channels, meta.source, meta.status) == (5, 2, "DialVerb", "completed")
    assert meta.error_code is None and meta.conference_sid is None


def test_fetch_metadata_reports_processing_duration_as_unknown(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=5, status="processing")
    meta = twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
    assert meta is not None and meta.status == "processing" and meta.duration_seconds is None


def test_fetch_metadata_returns_none_for_an_unknown_or_deleted_recording(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    assert twilio_gateway.fetch_metadata(simulator.account_sid, "RE" + "0" * 32) is None
    assert twilio_gateway.delete_recording(simulator.account_sid, rec.sid) is True
    assert twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid) is None


def test_fetch_metadata_rate_limit_carries_retry_after(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("metadata", "rate_limit", sid=rec.sid, retry_after=7)
    with pytest.raises(TwilioRateLimited) as caught:
        twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
    assert caught.value.retry_after == 7.0
    assert twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid) is not None  # fault consumed


@pytest.mark.parametrize("status", [500, 503])
def test_fetch_metadata_server_error_raises_twilio_error_with_status(simulator, twilio_gateway, status):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("metadata", "server_error", sid=rec.sid, status=status)
    with pytest.raises(TwilioError) as caught:
        twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
    assert type(caught.value) is TwilioError and caught.value.status == status


@pytest.mark.parametrize("fault", ["wrong_content_type", "truncate", "reset"])
def test_fetch_metadata_unusable_body_raises_twilio_error(simulator, twilio_gateway, fault):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("metadata", fault, sid=rec.sid)
    with pytest.raises(TwilioError):
        twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)


def test_unreachable_twilio_raises_twilio_error():
    with SimulatorServer() as sim:
        gateway = make_gateway(sim)
    try:
        with pytest.raises(TwilioError) as caught:
            gateway.fetch_metadata(sim.account_sid, "RE" + "1" * 32)
        assert caught.value.status is None
        with pytest.raises(TwilioError), gateway.open_media(sim.account_sid, "RE" + "1" * 32, "wav"):
            pass
    finally:
        gateway.close()


def test_wrong_credentials_raise_twilio_error_401(simulator):
    account = TwilioAccount(simulator.account_sid, "wrong", None, None, simulator.base_url)
    gateway = TwilioGateway(account, timeout_seconds=5, max_media_bytes=MB)
    rec = simulator.add_recording(duration_seconds=1)
    try:
        with pytest.raises(TwilioError) as caught:
            gateway.fetch_metadata(simulator.account_sid, rec.sid)
        assert caught.value.status == 401
        with pytest.raises(TwilioError) as caught, gateway.open_media(simulator.account_sid, rec.sid, "wav"):
            pass
        assert caught.value.status == 401
    finally:
        gateway.close()


def test_malformed_sids_are_refused_before_any_request(simulator, twilio_gateway):
    for call in (
        lambda: twilio_gateway.fetch_metadata(simulator.account_sid, "RE../../x"),
        lambda: twilio_gateway.delete_recording("ACnothex", "RE" + "1" * 32),
        lambda: twilio_gateway.open_media(simulator.account_sid, "RE" + "A" * 32, "wav"),
    ):
        with pytest.raises(InvalidSid):
            call()
    assert simulator.events() == []


def test_gateway_is_safe_to_share_between_threads(simulator, twilio_gateway):
    recs = [simulator.add_recording(duration_seconds=1) for _ in range(8)]
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(rec):
        try:
            got = []
            for _ in range(5):
                meta = twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
                got.append(meta.sid)
                _, _, body = download(twilio_gateway, simulator, rec.sid)
                assert body == rec.media_bytes()
            results[rec.sid] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rec,)) for rec in recs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == {rec.sid: [rec.sid] * 5 for rec in recs}


def test_credentials_never_appear_in_logs(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    rec = simulator.add_recording(duration_seconds=1)
    for use_api_key in (True, False):
        gateway = make_gateway(simulator, use_api_key=use_api_key)
        gateway.fetch_metadata(simulator.account_sid, rec.sid)
        download(gateway, simulator, rec.sid)
        list(
            gateway.list_recordings(
                account_sid=simulator.account_sid, created_on_or_after=None, created_on_or_before=None
            )
        )
        gateway.close()
    assert caplog.records, "the gateway should log at DEBUG"
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert simulator.auth_token not in text and simulator.api_key_secret not in text


# -- media ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_api_key", [True, False], ids=["api-key", "auth-token"])
@pytest.mark.parametrize(("media_format", "content_type"), [("wav", "audio/wav"), ("mp3", "audio/mpeg")])
def test_media_streams_the_exact_bytes_with_basic_auth(simulator, use_api_key, media_format, content_type):
    rec = simulator.add_recording(size_bytes=300_000 + 44, channels=1)
    gateway = make_gateway(simulator, use_api_key=use_api_key)
    try:
        got_type, length, body = download(gateway, simulator, rec.sid, media_format)
    finally:
        gateway.close()
    assert body == rec.media_bytes(media_format)
    assert (got_type, length) == (content_type, len(body))
    (event,) = simulator.events(kind="media")
    expected_user = simulator.api_key_sid if use_api_key else simulator.account_sid
    assert event.user == expected_user
    assert event.path.endswith(f"/Recordings/{rec.sid}.{media_format}")
    assert event.completed and event.bytes_sent == len(body)


def test_media_chunks_are_about_64_kib(simulator, twilio_gateway):
    rec = simulator.add_recording(size_bytes=1_000_000)
    with twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav") as media:
        sizes = [len(chunk) for chunk in media.chunks]
    assert sum(sizes) == 1_000_000
    assert max(sizes) <= 64 * 1024 and all(size == 64 * 1024 for size in sizes[1:-1])


@pytest.mark.parametrize(
    ("fault", "error"),
    [("not_ready", MediaNotReady), ("rate_limit", TwilioRateLimited), ("wrong_content_type", NotAudio)],
)
def test_media_fault_on_opening_maps_to_its_exception(simulator, twilio_gateway, fault, error):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("media", fault, sid=rec.sid, retry_after=3)
    with pytest.raises(error) as caught, twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav"):
        pytest.fail("the media must not open")
    if fault == "rate_limit":
        assert caught.value.retry_after == 3.0
    # The fault was one request only: the next attempt succeeds.
    assert download(twilio_gateway, simulator, rec.sid)[2] == rec.media_bytes()


def test_media_of_a_processing_recording_is_not_ready(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1, status="processing")
    with pytest.raises(MediaNotReady), twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav"):
        pass


@pytest.mark.parametrize("status", [500, 503])
def test_media_server_error_raises_twilio_error_with_status(simulator, twilio_gateway, status):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("media", "server_error", sid=rec.sid, status=status)
    with (
        pytest.raises(TwilioError) as caught,
        twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav"),
    ):
        pass
    assert caught.value.status == status


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_media_cut_short_raises_twilio_error_while_streaming(simulator, twilio_gateway, fault):
    rec = simulator.add_recording(size_bytes=400_000)
    simulator.add_fault("media", fault, sid=rec.sid)
    received = 0
    with twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav") as media:
        assert media.content_length == 400_000
        with pytest.raises(TwilioError):
            for chunk in media.chunks:
                received += len(chunk)
    assert received < 400_000
    (event,) = simulator.events(kind="media")
    assert event.fault == fault and not event.completed
    if fault == "truncate":
        assert event.bytes_sent == 200_000


def test_slow_media_still_arrives_whole(simulator, twilio_gateway):
    rec = simulator.add_recording(size_bytes=200_000)
    simulator.add_fault("media", "slow", sid=rec.sid, delay_seconds=0.01)
    assert download(twilio_gateway, simulator, rec.sid)[2] == rec.media_bytes()
    assert simulator.events(kind="media")[0].fault == "slow"


def test_mutated_media_has_the_same_length_but_different_bytes(simulator, twilio_gateway):
    rec = simulator.add_recording(size_bytes=200_000)
    simulator.add_fault("media", "mutate", sid=rec.sid)
    mutated = download(twilio_gateway, simulator, rec.sid)[2]
    assert len(mutated) == 200_000 and mutated != rec.media_bytes()
    assert download(twilio_gateway, simulator, rec.sid)[2] == rec.media_bytes()


def test_redirect_to_another_host_is_followed_without_credentials(simulator, twilio_gateway):
    rec = simulator.add_recording(size_bytes=100_000)
    simulator.add_fault("media", "redirect", sid=rec.sid)
    assert download(twilio_gateway, simulator, rec.sid)[2] == rec.media_bytes()
    media, cdn = simulator.events(kind="media"), simulator.events(kind="cdn")
    assert [event.status for event in media] == [302]
    assert [(event.status, event.user, event.completed) for event in cdn] == [(200, None, True)]
    assert cdn[0].seq > media[0].seq


def test_the_simulated_cdn_refuses_credentials_so_the_redirect_test_can_fail(simulator):
    rec = simulator.add_recording(size_bytes=10_000)
    simulator.add_fault("media", "redirect", sid=rec.sid)
    auth = (simulator.api_key_sid, simulator.api_key_secret)
    with httpx.Client(auth=auth, follow_redirects=False) as client:
        first = client.get(simulator.recording_url(rec.sid) + ".wav")
        location = first.headers["location"]
        assert first.status_code == 302 and not location.startswith(simulator.base_url)
        leaked = client.get(location, headers={"Authorization": "Basic eDp5"})
    assert leaked.status_code == 400
    assert simulator.events(kind="cdn")[-1].detail == "authorization header"


def test_media_larger_than_the_limit_is_refused_by_content_length(simulator):
    rec = simulator.add_recording(size_bytes=MB)
    gateway = make_gateway(simulator, max_bytes=MB - 1)
    try:
        with (
            pytest.raises(TwilioError, match="above the limit"),
            gateway.open_media(simulator.account_sid, rec.sid, "wav"),
        ):
            pass
    finally:
        gateway.close()


def test_media_format_must_be_wav_or_mp3(simulator, twilio_gateway):
    with (
        pytest.raises(InvalidInput),
        twilio_gateway.open_media(simulator.account_sid, "RE" + "1" * 32, "ogg"),
    ):
        pass
    assert simulator.events() == []


# -- delete ---------------------------------------------------------------------------------------------


def test_delete_answers_true_then_false_and_the_media_is_gone(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    assert twilio_gateway.delete_recording(simulator.account_sid, rec.sid) is True
    assert simulator.recording(rec.sid).deleted
    assert twilio_gateway.delete_recording(simulator.account_sid, rec.sid) is False
    with pytest.raises(MediaNotReady), twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav"):
        pass
    assert [event.status for event in simulator.events(kind="delete")] == [204, 404]


def test_delete_rate_limited_raises_and_deletes_nothing(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("delete", "rate_limit", sid=rec.sid, retry_after=2)
    with pytest.raises(TwilioRateLimited) as caught:
        twilio_gateway.delete_recording(simulator.account_sid, rec.sid)
    assert caught.value.retry_after == 2.0
    assert not simulator.recording(rec.sid).deleted


def test_delete_whose_answer_is_lost_raises_and_the_retry_sees_it_gone(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("delete", "reset", sid=rec.sid)
    with pytest.raises(TwilioError):
        twilio_gateway.delete_recording(simulator.account_sid, rec.sid)
    assert simulator.recording(rec.sid).deleted
    assert twilio_gateway.delete_recording(simulator.account_sid, rec.sid) is False


def test_delete_answered_with_an_xml_200_is_not_taken_for_a_deletion(simulator, twilio_gateway):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("delete", "wrong_content_type", sid=rec.sid)
    with pytest.raises(TwilioError) as caught:
        twilio_gateway.delete_recording(simulator.account_sid, rec.sid)
    assert caught.value.status == 200


# -- list -----------------------------------------------------------------------------------------------


def _day(day: int) -> datetime:
    return datetime(2024, 5, day, 12, 0, tzinfo=UTC)


def test_list_follows_pages_newest_first(simulator, twilio_gateway):
    recs = [simulator.add_recording(duration_seconds=1, date_created=_day(1 + i)) for i in range(7)]
    listed = list(
        twilio_gateway.list_recordings(
            account_sid=simulator.account_sid,
            created_on_or_after=None,
            created_on_or_before=None,
            page_size=2,
        )
    )
    assert [meta.sid for meta in listed] == [rec.sid for rec in reversed(recs)]
    pages = simulator.events(kind="list")
    assert [event.status for event in pages] == [200] * 4
    assert "PageToken" not in pages[0].query and "PageSize=2" in pages[0].query
    assert all("PageToken=PA" in event.query for event in pages[1:])


def test_list_filters_by_inclusive_days(simulator, twilio_gateway):
    recs = {
        day: simulator.add_recording(duration_seconds=1, date_created=_day(day)) for day in (1, 2, 3, 4, 5)
    }
    listed = twilio_gateway.list_recordings(
        account_sid=simulator.account_sid,
        created_on_or_after=date(2024, 5, 2),
        created_on_or_before=date(2024, 5, 4),
        page_size=1,
    )
    assert [meta.sid for meta in listed] == [recs[4].sid, recs[3].sid, recs[2].sid]


def test_list_rate_limited_between_pages_raises(simulator, twilio_gateway):
    for day in (1, 2, 3):
        simulator.add_recording(duration_seconds=1, date_created=_day(day))
    listed = twilio_gateway.list_recordings(
        account_sid=simulator.account_sid, created_on_or_after=None, created_on_or_before=None, page_size=1
    )
    first = next(listed)
    simulator.add_fault("list", "rate_limit", retry_after=4)
    with pytest.raises(TwilioRateLimited) as caught:
        list(listed)
    assert first.date_created == _day(3) and caught.value.retry_after == 4.0


def test_list_skips_deleted_recordings(simulator, twilio_gateway):
    kept = simulator.add_recording(duration_seconds=1)
    gone = simulator.add_recording(duration_seconds=1)
    twilio_gateway.delete_recording(simulator.account_sid, gone.sid)
    listed = twilio_gateway.list_recordings(
        account_sid=simulator.account_sid, created_on_or_after=None, created_on_or_before=None
    )
    assert [meta.sid for meta in listed] == [kept.sid]


# -- the twilio-python HTTP client ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/2010-04-01/Accounts",
        "https://api.twilio.com.evil.example/x",
        "http://api.twilio.com/x",
    ],
)
def test_rest_client_refuses_any_url_outside_the_twilio_api(simulator, url):
    client = BaseUrlHttpClient(base_url=simulator.base_url, timeout=5)
    try:
        with pytest.raises(TwilioError, match="refusing"):
            client.request("GET", url, auth=(simulator.account_sid, simulator.auth_token))
    finally:
        client.close()
    assert simulator.events() == []


def test_rest_client_sends_twilio_api_urls_to_the_configured_base(simulator):
    client = BaseUrlHttpClient(base_url=simulator.base_url, timeout=5)
    try:
        answer = client.request(
            "GET",
            f"https://api.twilio.com/2010-04-01/Accounts/{simulator.account_sid}/Recordings.json",
            params={"PageSize": 3},
            auth=(simulator.account_sid, simulator.auth_token),
        )
    finally:
        client.close()
    assert answer.status_code == 200
    (event,) = simulator.events(kind="list")
    assert event.query == "PageSize=3"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("nan", None),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(header, expected):
    assert parse_retry_after(header) == expected


def test_retry_after_http_date_in_the_future_counts_down():
    from email.utils import format_datetime

    later = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120), usegmt=True)
    assert 0 < parse_retry_after(later) <= 120
