#!/usr/bin/env bash
# Regenerates every prompt asset, prompts/assets/<locale>/<id>.wav, from prompts/catalog.yaml:
# espeak-ng speaks each text with the locale's voice and speed from the catalog, and sox turns
# it into telephony audio (8 kHz, mono, 16-bit signed PCM WAV, leading and trailing silence
# trimmed, 100 ms of trailing silence, peak normalised to -3 dBFS). Output is deterministic:
# the same catalog and tool versions give byte-identical files (sox dither is off).
#
# Usage: scripts/gen-prompts.sh            (from anywhere; installs espeak-ng, sox and
#                                           python3-yaml with apt-get when run as root)
set -euo pipefail
cd "$(dirname "$0")/.."

catalog=prompts/catalog.yaml
assets=prompts/assets

# --- tools ----------------------------------------------------------------------------------
need_pkgs=()
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
python3 -c 'import yaml' >/dev/null 2>&1 || need_pkgs+=(python3-yaml)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "gen-prompts.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "gen-prompts.sh: missing ${need_pkgs[*]}; install them (Debian: apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
fi
# apt's python3 has python3-yaml even when another python3 comes first on PATH.
py=python3
python3 -c 'import yaml' >/dev/null 2>&1 || py=/usr/bin/python3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- catalog -> one job per (locale, id, part) -----------------------------------------------
# The parser checks the catalog's shape (every prompt has a text in every locale, parts name a
# known locale) and writes each part's words to a file, so no text passes through the shell.
# Job lines: <locale> <id> <part index> <espeak voice> <speed> <text file>
"$py" - "$catalog" "$work" >"$work/jobs" <<'PY'
import os, re, sys, yaml

path, work = sys.argv[1], sys.argv[2]
def fail(msg):
    sys.exit(f"gen-prompts.sh: {path}: {msg}")

try:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
except (OSError, yaml.YAMLError) as e:
    fail(e)
if not isinstance(doc, dict):
    fail("not a mapping")

voices = {}
for loc in doc.get("locales") or []:
    if not re.fullmatch(r"[a-z]{2}-[A-Z]{2}", str(loc.get("id", ""))):
        fail(f"bad locale {loc!r}")
    voices[loc["id"]] = (str(loc["voice"]), int(loc["speed"]))
if not voices:
    fail("no locales")

ids = set()
for p in doc.get("prompts") or []:
    pid = str(p.get("id", ""))
    if not re.fullmatch(r"[a-z][a-z0-9_]*", pid) or pid in ids:
        fail(f"bad or duplicate prompt id {pid!r}")
    ids.add(pid)
    text = p.get("text") or {}
    if set(text) != set(voices):
        fail(f"prompt {pid}: texts for {sorted(text)}, locales are {sorted(voices)}")
    for loc in voices:
        parts = text[loc]
        if isinstance(parts, str):
            parts = [{loc: parts}]
        for i, part in enumerate(parts):
            if not isinstance(part, dict) or len(part) != 1:
                fail(f"prompt {pid} {loc}: part {i} must be a one-key map locale: words")
            (speaker, words), = part.items()
            if speaker not in voices or not str(words).strip():
                fail(f"prompt {pid} {loc}: part {i}: unknown locale {speaker!r} or empty text")
            name = os.path.join(work, f"{loc}.{pid}.{i}.txt")
            with open(name, "w", encoding="utf-8") as out:
                out.write(" ".join(str(words).split()) + "\n")
            voice, speed = voices[speaker]
            print(loc, pid, i, voice, speed, name)
PY

# --- render -----------------------------------------------------------------------------------
# Per part: espeak-ng at its native 22.05 kHz, then sox: high-pass at 100 Hz (no rumble or DC
# on the line), high-quality resample to 8 kHz, cut leading and trailing silence below -45 dBFS.
# Parts of one prompt are joined with 250 ms of silence; then the prompt is peak-normalised to
# -3 dBFS and padded with 100 ms of silence. -D: no dither, so the output is reproducible.
out="$work/assets"
while read -r locale id part voice speed file; do
  mkdir -p "$out/$locale"
  espeak-ng -b 1 -v "$voice" -s "$speed" -f "$file" -w "$work/raw.wav"
  sox -D "$work/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$work/$locale.$id.$part.wav" \
    gain -6 highpass 100 rate -v 8000 silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse
done <"$work/jobs"

cut -d' ' -f1,2 "$work/jobs" | uniq | while read -r locale id; do
  parts=("$work/$locale.$id".*.wav)
  if [ ${#parts[@]} -gt 1 ]; then
    inputs=()
    for ((i = 0; i < ${#parts[@]}; i++)); do
      [ "$i" -gt 0 ] && inputs+=("$work/gap.wav")
      inputs+=("$work/$locale.$id.$i.wav")
    done
    [ -f "$work/gap.wav" ] || sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$work/gap.wav" trim 0 0.25
    sox -D "${inputs[@]}" "$work/joined.wav"
  else
    cp "${parts[0]}" "$work/joined.wav"
  fi
  sox -D "$work/joined.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$locale/$id.wav" norm -3 pad 0 0.1
done

# --- replace the old assets (README.md stays) ----------------------------------------------------
mkdir -p "$assets"
find "$assets" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
cp -r "$out"/. "$assets"/
n=$(find "$assets" -name '*.wav' | wc -l)
size=$(du -sh --apparent-size "$assets" | cut -f1)
echo "gen-prompts.sh: wrote $n prompts to $assets ($size)"
