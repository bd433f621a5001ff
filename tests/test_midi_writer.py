"""`midi_writer.write_midi` writes the bytes `PrettyMIDI.write` writes, for every kind of file the
tool makes and for the ones it hands back to pretty_midi."""

import numpy as np
import pretty_midi
import pytest

from ganmusic import changes
from ganmusic.encoding import EncodingConfig, Note, beats_to_midi, notes_to_midi
from ganmusic.midi_writer import _fast_path_applies, write_midi

ENCODING = EncodingConfig()


def random_notes(rng, n: int) -> list[Note]:
    """Grid notes with chords, repeated pitches and overlaps (which `notes_to_midi` cuts)."""
    onsets = np.cumsum(rng.choice([0, 0, 1, 2, 3, 6, 12, 30], size=n))
    return [Note(int(o), int(p), int(d)) for o, p, d in
            zip(onsets, rng.integers(40, 90, size=n), rng.choice([1, 2, 3, 6, 12, 48], size=n))]


def assert_same_bytes(midi, tmp_path, name: str) -> None:
    ours, theirs = tmp_path / f"{name}-ours.mid", tmp_path / f"{name}-pretty_midi.mid"
    write_midi(midi, ours)
    midi.write(str(theirs))
    assert ours.read_bytes() == theirs.read_bytes(), name


@pytest.mark.parametrize("tempo", [120.0, 97.3, 333.0])
def test_songs_are_pretty_midis_own_bytes(tmp_path, tempo):
    rng = np.random.default_rng(int(tempo))
    for k in range(6):
        notes = random_notes(rng, int(rng.integers(1, 400)))
        midi = notes_to_midi(notes, ENCODING, tempo=tempo)
        assert _fast_path_applies(midi) and len(midi.instruments[0].notes) > 0
        assert_same_bytes(midi, tmp_path, f"plain{k}")


def test_songs_over_changes_are_pretty_midis_own_bytes(tmp_path):
    # Comping, chord symbols (beyond ASCII too: stored as UTF-8 bytes), meters that change mid-form.
    rng = np.random.default_rng(0)
    for k, line in enumerate(["blues-f", "3/4 Am7 | D7 | Gmaj7 | 7/8 Cmaj7 |", "C7(b9) | Cø7 | CΔ7 | N.C. |"]):
        form = changes.load_form(line).repeat(2)
        for comping in (True, False):
            midi = changes.song_midi(random_notes(rng, 120), form, ENCODING, tempo=150.0, with_comping=comping)
            assert _fast_path_applies(midi) and midi.text_events
            assert_same_bytes(midi, tmp_path, f"changes{k}{comping}")


def test_other_tracks_and_edge_cases_are_pretty_midis_own_bytes(tmp_path):
    midi = beats_to_midi([(0.0, 1.0, 36), (0.5, 0.25, 38)], drum=True, name="drums")
    midi.instruments += beats_to_midi([(k * 0.5, 0.5, 60 + k) for k in range(16)], program=33).instruments * 17
    midi.instruments.append(pretty_midi.Instrument(program=0))  # no notes, no name
    assert_same_bytes(midi, tmp_path, "many")
    assert_same_bytes(beats_to_midi([]), tmp_path, "empty")
    assert_same_bytes(pretty_midi.PrettyMIDI(), tmp_path, "nothing")
    late = notes_to_midi([Note(8, 60, 4)], ENCODING)
    late.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 1.0)]  # none at 0: a 4/4 is added
    assert_same_bytes(late, tmp_path, "late-signature")


def test_what_it_does_not_handle_goes_to_pretty_midi(tmp_path):
    bent = notes_to_midi([Note(0, 60, 4)], ENCODING)
    bent.instruments[0].pitch_bends.append(pretty_midi.PitchBend(512, 0.1))
    keyed = notes_to_midi([Note(0, 60, 4)], ENCODING)
    keyed.key_signature_changes.append(pretty_midi.KeySignature(3, 0.0))
    for k, midi in enumerate([bent, keyed]):
        assert not _fast_path_applies(midi)
        assert_same_bytes(midi, tmp_path, f"other{k}")
    # Out of MIDI's range: mido's own error, as from pretty_midi (no corrupt file).
    high = notes_to_midi([Note(0, 60, 4)], ENCODING)
    high.instruments[0].notes[0].pitch = 128
    assert not _fast_path_applies(high)
    with pytest.raises(ValueError):
        write_midi(high, tmp_path / "high.mid")
    assert not (tmp_path / "high.mid").exists()
