// Package bundle checks uploaded web bundles (zip archives) before they are
// stored and served to devices, and builds deterministic zips and manifests
// from folders.
//
// Inspect refuses anything a device unzipper could mis-handle: paths that
// escape the bundle, links, duplicates, encrypted or oddly laid out entries,
// and archives that decompress to far more than they weigh. It hashes every
// file and returns a Manifest; Walk streams the files again, re-checking each
// against that manifest.
//
// Entries named __MACOSX/... (at the archive root) and .DS_Store (at any
// depth) are archiver litter: they are validated like any other entry, since
// devices unzip them too, but they are left out of the manifest and of Walk.
package bundle
