package prompts

import "errors"

var (
	// ErrUnknownPrompt is returned by Clip for an id the catalog does not have.
	ErrUnknownPrompt = errors.New("prompts: unknown prompt")
	// ErrUnknownLocale is returned by Clip and ParseLocale for a locale the catalog does not have.
	ErrUnknownLocale = errors.New("prompts: unknown locale")
	// ErrBadCatalog wraps every problem with catalog.yaml and its match with the assets: bad
	// YAML, a missing text, an id or locale named twice, a missing asset, an asset or a folder
	// under assets/ that no catalog entry owns.
	ErrBadCatalog = errors.New("prompts: bad catalog")
	// ErrBadAsset wraps every asset that is not a readable 8 kHz mono 16-bit PCM WAV file with
	// at least one sample. The error names the file.
	ErrBadAsset = errors.New("prompts: bad asset")
)
