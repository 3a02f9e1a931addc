// Package prompts owns the words and audio of everything a caller hears: the prompt catalog
// (catalog.yaml, one text per prompt id and locale) and its recordings, decoded once into
// media.Clip values ready to play on any leg.
//
// The prompt ids are a stable external contract (welcome, language_menu, request_menu,
// ask_account, ...; see DESIGN.md): platforms, log readers and tests see them as the mark that
// follows each prompt. Locales are en-US and es-US.
//
// The audio is generated, not recorded: scripts/gen-prompts.sh speaks each text with espeak-ng
// and shapes it with sox into 8 kHz mono 16-bit PCM WAV files under assets/<locale>/<id>.wav
// (assets/README.md has the exact commands). The catalog and the assets are embedded in the
// binary; Load decodes and checks them at start-up, so a missing, orphaned or malformed asset
// stops the server before the first call instead of in the middle of one.
//
// This package imports no other project package but media.
package prompts
