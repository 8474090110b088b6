"""Sense data decoding: fixed and descriptor formats, short and odd sense."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpy.constants import SenseKey
from sgpy.errors import MalformedResponse
from sgpy.sense import (
    ActualRetryCount,
    AnotherProgressIndicationDescriptor,
    AtaStatusReturnDescriptor,
    BlockCommandsDescriptor,
    CommandSpecificInformationDescriptor,
    DeviceDesignationDescriptor,
    DirectAccessBlockDeviceDescriptor,
    FieldPointer,
    FieldReplaceableUnitDescriptor,
    ForwardedSenseDataDescriptor,
    InformationDescriptor,
    MicrocodeActivationDescriptor,
    ProgressIndication,
    RawDescriptor,
    RawSenseKeySpecific,
    ReferralSegment,
    ReferralTargetPortGroup,
    SegmentPointer,
    SenseData,
    SenseKeySpecificDescriptor,
    StreamCommandsDescriptor,
    UnitAttentionQueueOverflow,
    UserDataSegmentReferralDescriptor,
    decode,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def fixed(key: int, asc: int, ascq: int, *, code: int = 0x70, valid: bool = False, info: int = 0,
          flags: int = 0, csi: int = 0, fru: int = 0, sks: bytes = b"\0\0\0", extra: bytes = b"") -> bytes:
    """Fixed-format sense built from SPC-5 table 55."""
    body = bytearray(18)
    body[0] = code | (0x80 if valid else 0)
    body[2] = flags | key
    body[3:7] = info.to_bytes(4, "big")
    body[7] = 10 + len(extra)
    body[8:12] = csi.to_bytes(4, "big")
    body[12], body[13], body[14] = asc, ascq, fru
    body[15:18] = sks
    return bytes(body) + extra


# ---------------------------------------------------------------- fixed format


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (
            fixed(5, 0x24, 0, sks=h("cf 0002")),
            dict(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x24, ascq=0,
                 sense_key_specific=FieldPointer(cd=True, field_pointer=2, bit_pointer=7),
                 information=None, deferred=False, descriptor_format=False, truncated=False, wanted_length=18),
        ),
        (
            fixed(5, 0x26, 0, sks=h("80 0010")),
            dict(sense_key_specific=FieldPointer(cd=False, field_pointer=16, bit_pointer=None)),
        ),
        (
            fixed(3, 0x11, 0, valid=True, info=0x12345678, sks=h("80 0003")),
            dict(sense_key=SenseKey.MEDIUM_ERROR, information=0x12345678, valid=True,
                 sense_key_specific=ActualRetryCount(3)),
        ),
        (
            fixed(3, 0x11, 0, valid=False, info=0x1234),
            dict(information=None, valid=False, sense_key_specific=None),
        ),
        (
            fixed(2, 0x04, 0x04, sks=h("80 8000")),
            dict(sense_key=SenseKey.NOT_READY, sense_key_specific=ProgressIndication(0x8000)),
        ),
        (
            fixed(6, 0x29, 0, sks=h("81 0000")),
            dict(sense_key=SenseKey.UNIT_ATTENTION, sense_key_specific=UnitAttentionQueueOverflow(True)),
        ),
        (
            fixed(0xA, 0x0D, 0x01, sks=h("ac 0102")),
            dict(sense_key_specific=SegmentPointer(sd=True, field_pointer=0x102, bit_pointer=4)),
        ),
        (
            fixed(0x7, 0x27, 0, sks=h("80 1234")),
            dict(sense_key=SenseKey.DATA_PROTECT, sense_key_specific=RawSenseKeySpecific(h("80 1234"))),
        ),
        (
            fixed(0, 0, 1, flags=0x80 | 0x40 | 0x20 | 0x10),
            dict(filemark=True, eom=True, ili=True, sdat_ovfl=True, sense_key=SenseKey.NO_SENSE),
        ),
        (
            fixed(4, 0x44, 0, code=0x71, fru=0x42, csi=0xDEADBEEF),
            dict(deferred=True, current=False, fru_code=0x42, command_specific_information=0xDEADBEEF),
        ),
        (
            fixed(5, 0x20, 0, extra=b"\x01\x02\x03"),
            dict(additional_bytes=b"\x01\x02\x03", wanted_length=21),
        ),
        # VALID in byte 0 does not change the response code
        (
            fixed(1, 0x17, 1, valid=True, info=7),
            dict(response_code=0x70, sense_key=SenseKey.RECOVERED_ERROR, information=7),
        ),
    ],
)
def test_fixed_format(buf: bytes, expected: dict) -> None:
    sense = decode(buf)
    assert sense is not None
    for name, value in expected.items():
        assert getattr(sense, name) == value, name


@pytest.mark.parametrize(
    ("buf", "key", "asc", "ascq", "truncated", "wanted"),
    [
        # shorter than the 8-byte header: what is there is used, a field it stops before is None
        (h("70 00 05"), SenseKey.ILLEGAL_REQUEST, None, None, True, None),
        (h("70"), SenseKey.NO_SENSE, None, None, True, None),
        # additional length claims more than was written
        (fixed(5, 0x24, 0)[:14], SenseKey.ILLEGAL_REQUEST, 0x24, 0, True, 18),
        (fixed(5, 0x24, 0)[:13], SenseKey.ILLEGAL_REQUEST, 0x24, None, True, 18),
        # additional length shorter than the usual 10: ASC beyond it is not read
        (h("70 00 05 00000000 04 00000000 24 00"), SenseKey.ILLEGAL_REQUEST, None, None, False, 12),
        # bytes past the additional length are ignored
        (fixed(6, 0x29, 0) + b"\xff" * 10, SenseKey.UNIT_ATTENTION, 0x29, 0, False, 18),
        # descriptor format, short
        (h("72 06 29"), SenseKey.UNIT_ATTENTION, 0x29, None, True, None),
        (h("72 06 29 00 00 00 00 08"), SenseKey.UNIT_ATTENTION, 0x29, 0, True, 16),
    ],
)
def test_short_or_inconsistent(buf: bytes, key: SenseKey, asc: Optional[int], ascq: Optional[int], truncated: bool,
                               wanted) -> None:
    sense = decode(buf)
    assert sense is not None
    assert (sense.sense_key, sense.asc, sense.ascq) == (key, asc, ascq)
    assert sense.truncated is truncated
    assert sense.wanted_length == wanted
    str(sense), repr(sense)


@pytest.mark.parametrize("buf", [b"", b"\x00", bytes(18), b"\x80" + bytes(17)])
def test_no_sense_is_none(buf: bytes) -> None:
    assert decode(buf) is None


@pytest.mark.parametrize("buf", [h("7f 00 05"), h("05 00 05 00"), h("74 00"), h("f5")])
def test_not_sense_raises(buf: bytes) -> None:
    with pytest.raises(MalformedResponse):
        decode(buf)


# ----------------------------------------------------------- descriptor format


def desc_sense(key: int, asc: int, ascq: int, *descriptors: bytes, code: int = 0x72) -> bytes:
    """Descriptor-format sense built from SPC-5 table 28."""
    body = b"".join(descriptors)
    return bytes([code, key, asc, ascq, 0, 0, 0, len(body)]) + body


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (h("00 0a 80 00 0000000012345678"), InformationDescriptor(valid=True, information=0x12345678)),
        (h("01 0a 00 00 00000000000000ff"), CommandSpecificInformationDescriptor(0xFF)),
        (h("02 06 00 00 cf 0002 00"),
         SenseKeySpecificDescriptor(FieldPointer(cd=True, field_pointer=2, bit_pointer=7))),
        (h("02 06 00 00 00 0002 00"), SenseKeySpecificDescriptor(None)),
        (h("03 02 00 17"), FieldReplaceableUnitDescriptor(0x17)),
        (h("04 02 00 e0"), StreamCommandsDescriptor(filemark=True, eom=True, ili=True)),
        (h("05 02 00 20"), BlockCommandsDescriptor(ili=True)),
        # SAT-4: extend, error, count 15:8, 7:0, lba 31:24, 7:0, 39:32, 15:8, 47:40, 23:16, device, status
        (h("09 0c 01 04 12 34 44 11 55 22 66 33 40 51"),
         AtaStatusReturnDescriptor(extend=True, error=0x04, count=0x1234, lba=0x665544332211,
                                   device=0x40, status=0x51)),
        (h("0a 06 02 04 04 00 40 00"),
         AnotherProgressIndicationDescriptor(SenseKey.NOT_READY, 0x04, 0x04, 0x4000)),
        (h("0b 1a 01 00" "000000 01" "0000000000000010" "000000000000001f" "01 00 0007"),
         UserDataSegmentReferralDescriptor(True, (ReferralSegment(0x10, 0x1F, (ReferralTargetPortGroup(1, 7),)),))),
        (h("0d 16 a0 00 80 0005 09 0000000000001000 0000000000000002"),
         DirectAccessBlockDeviceDescriptor(valid=True, ili=True, sense_key_specific=ActualRetryCount(5),
                                           fru_code=9, information=0x1000, command_specific_information=2)),
        (h("0f 06 00 00 00 00 00 3c"), MicrocodeActivationDescriptor(60)),
        # OSD, vendor specific and unknown types are kept raw
        (h("06 02 ab cd"), RawDescriptor(0x06, h("ab cd"))),
        (h("80 03 01 02 03"), RawDescriptor(0x80, h("01 02 03"))),
        (h("42 00"), RawDescriptor(0x42, b"")),
        # a known type that is too short for its layout
        (h("00 02 80 00"), RawDescriptor(0x00, h("80 00"))),
    ],
)
def test_descriptor_types(descriptor: bytes, expected) -> None:
    key = 3 if descriptor[0] == 0x0D else 5
    sense = decode(desc_sense(key, 0x11, 0, descriptor))
    assert sense is not None
    assert sense.descriptors == (expected,)
    assert not sense.truncated
    assert str(expected)


def test_descriptor_fields_are_gathered() -> None:
    sense = decode(desc_sense(
        3, 0x11, 0x00,
        h("00 0a 80 00 0000000000abcdef"),
        h("01 0a 00 00 0000000000000005"),
        h("02 06 00 00 80 0002 00"),
        h("03 02 00 33"),
        h("05 02 00 20"),
    ))
    assert sense is not None
    assert sense.descriptor_format and sense.current
    assert sense.information == 0xABCDEF
    assert sense.command_specific_information == 5
    assert sense.sense_key_specific == ActualRetryCount(2)
    assert sense.fru_code == 0x33
    assert sense.ili is True
    assert sense.descriptor(0x03) == FieldReplaceableUnitDescriptor(0x33)
    assert sense.descriptor(0x0F) is None
    assert str(sense) == (
        "MEDIUM ERROR \u2014 Unrecovered read error (11h/00h), actual retry count: 2, "
        "information: 0xabcdef (11259375), ILI"
    )


def test_direct_access_descriptor_fills_fields() -> None:
    sense = decode(desc_sense(3, 0x11, 0, h("0d 16 80 00 00 0000 00 0000000000000777 0000000000000000")))
    assert sense is not None and sense.information == 0x777 and sense.valid


def test_forwarded_sense() -> None:
    inner = fixed(5, 0x24, 0, sks=h("c0 0001"))
    descriptor = bytes([0x0C, 2 + len(inner), 0x81, 0x02]) + inner
    sense = decode(desc_sense(0xA, 0x0D, 0x01, descriptor))
    assert sense is not None
    (fwd,) = sense.descriptors
    assert isinstance(fwd, ForwardedSenseDataDescriptor)
    assert fwd.fsdt and fwd.sense_data_source == 1 and fwd.forwarded_status == 2
    assert fwd.sense is not None and fwd.sense.asc == 0x24
    assert "Invalid field in CDB" in str(fwd)


def test_forwarded_undecodable_sense_is_kept() -> None:
    descriptor = h("0c 04 00 02 05 06")
    sense = decode(desc_sense(0xA, 0x0D, 0x01, descriptor))
    (fwd,) = sense.descriptors
    assert fwd.sense is None and fwd.data == h("05 06")


def test_device_designation_descriptor() -> None:
    # designation descriptor: binary code set, LU association, NAA, 8 bytes
    descriptor = h("0e 0c 01 03 00 08 5000c50012345678")
    sense = decode(desc_sense(6, 0x3F, 0x03, descriptor))
    (dd,) = sense.descriptors
    assert isinstance(dd, DeviceDesignationDescriptor)
    assert dd.designator.naa == 5 and dd.designator.company_id == 0x000C50
    assert "naa.5000c50012345678" in str(dd)


def test_descriptor_running_past_the_end() -> None:
    buf = desc_sense(5, 0x24, 0, h("00 0a 80 00 0000000012345678"))[:-3]
    sense = decode(buf)
    assert sense.truncated
    (raw,) = sense.descriptors
    assert raw == RawDescriptor(0x00, h("80 00 00000000 12"), truncated=True)
    assert sense.information is None


def test_descriptor_past_additional_length() -> None:
    # additional length says 6 but the descriptor claims 10 bytes of body
    buf = h("72 05 24 00 00 00 00 06 00 0a 80 00 0000 0000 0000 0012")
    sense = decode(buf)
    assert sense.truncated
    assert isinstance(sense.descriptors[0], RawDescriptor)


def test_lone_type_byte() -> None:
    sense = decode(h("72 05 24 00 00 00 00 01 00"))
    assert sense.descriptors == (RawDescriptor(0, b"", truncated=True),)


def test_deferred_descriptor_sense_text() -> None:
    sense = decode(desc_sense(4, 0x44, 0, code=0x73))
    assert sense.deferred
    assert str(sense) == "deferred error: HARDWARE ERROR \u2014 Internal target failure (44h/00h)"


# ------------------------------------------------------------------ text


@pytest.mark.parametrize(
    ("buf", "text"),
    [
        (fixed(5, 0x24, 0, sks=h("cf 0002")),
         "ILLEGAL REQUEST \u2014 Invalid field in CDB (24h/00h), field pointer: CDB byte 2 bit 7"),
        (fixed(5, 0x26, 0, sks=h("80 0004")),
         "ILLEGAL REQUEST \u2014 Invalid field in parameter list (26h/00h), field pointer: parameter data byte 4"),
        (fixed(2, 0x04, 0x04, sks=h("80 4000")),
         "NOT READY \u2014 Logical unit not ready, format in progress (04h/04h), progress: 25.0%"),
        (fixed(6, 0x29, 0), "UNIT ATTENTION \u2014 Power on, reset, or bus device reset occurred (29h/00h)"),
        (fixed(0xB, 0x80, 0x01), "ABORTED COMMAND \u2014 Vendor specific ASC 80h, ASCQ 01h (80h/01h)"),
        (fixed(0, 0, 1, flags=0x80), "NO SENSE \u2014 Filemark detected (00h/01h), filemark"),
    ],
)
def test_str(buf: bytes, text: str) -> None:
    assert str(decode(buf)) == text


def test_progress_property() -> None:
    assert decode(fixed(2, 4, 4, sks=h("80 8000"))).progress == 50.0
    assert decode(fixed(5, 0x24, 0)).progress is None


# ------------------------------------------------------------ REQUEST SENSE


def test_request_sense_from_bytes() -> None:
    sense = SenseData.from_bytes(fixed(0, 0, 0))
    assert sense.sense_key is SenseKey.NO_SENSE
    assert SenseData.required_length(fixed(0, 0, 0, extra=b"\0" * 4)) == 22
    assert SenseData.required_length(b"\x70\x00") is None
    with pytest.raises(MalformedResponse):
        SenseData.from_bytes(b"")


# -------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=260))
def test_random_bytes(buf: bytes) -> None:
    try:
        sense = decode(buf)
    except MalformedResponse:
        return
    if sense is not None:
        str(sense), repr(sense)
        for d in sense.descriptors:
            str(d), repr(d)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0x70, 0x71, 0x72, 0x73, 0xF0, 0xF2]), st.binary(max_size=252))
def test_random_sense_shaped_bytes(code: int, rest: bytes) -> None:
    sense = decode(bytes([code]) + rest)
    assert sense is not None
    str(sense), repr(sense)
    for d in sense.descriptors:
        str(d), repr(d)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x11), st.binary(max_size=30)), max_size=6))
def test_random_descriptor_lists(items) -> None:
    descriptors = [bytes([t, len(body)]) + body for t, body in items]
    sense = decode(desc_sense(5, 0x24, 0, *descriptors))
    assert len(sense.descriptors) == len(items)
    str(sense), repr(sense)
    for d in sense.descriptors:
        str(d), repr(d)
