package main

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otakit/ota/shared/delta"
	"github.com/spf13/cobra"
)

func newPatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patch",
		Short: "Create and apply patches between two bundle trees",
		Long: "Create and apply patches between two versions of a bundle.\n" +
			"OLD and NEW are folders or .zip files (a zip's entries are used as they are).",
	}
	cmd.AddCommand(newPatchCreateCmd(), newPatchApplyCmd(), newPatchInfoCmd())
	return cmd
}

func newPatchCreateCmd() *cobra.Command {
	var from, to, out string
	var level int
	var quiet bool
	c := &cobra.Command{
		Use:   "create --from OLD --to NEW --out PATCH",
		Short: "Write a patch that turns OLD into NEW",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" || out == "" {
				return errors.New("patch create needs --from, --to and --out")
			}
			oldFS, closeOld, err := openTree(from)
			if err != nil {
				return err
			}
			defer closeOld()
			newFS, closeNew, err := openTree(to)
			if err != nil {
				return err
			}
			defer closeNew()
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
			if err != nil {
				return fmt.Errorf("cannot write %s: %w", out, err)
			}
			defer os.Remove(tmp.Name())
			bw := bufio.NewWriterSize(tmp, 256<<10)
			st, err := delta.Create(cmd.Context(), oldFS, newFS, bw, delta.Options{Level: level})
			if err == nil {
				err = bw.Flush()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("patch create: %w", err)
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "patch %s: %s for %d files (%d kept, %d copied, %d coded in %d groups, %d deleted), new tree %s, %s\n",
					out, fmtBytes(st.PatchSize), st.Files, st.Kept, st.Copied, st.Coded, st.Groups, st.Deleted, st.NewTreeHash, st.Duration.Round(1e6))
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "old tree: folder or .zip")
	c.Flags().StringVar(&to, "to", "", "new tree: folder or .zip")
	c.Flags().StringVar(&out, "out", "", "patch file to write")
	c.Flags().IntVar(&level, "level", 0, "effort: 1 fast, 2 default, 3 smallest")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return c
}

func newPatchApplyCmd() *cobra.Command {
	var from, patch, out string
	c := &cobra.Command{
		Use:   "apply --from OLD --patch PATCH --out DIR",
		Short: "Apply a patch to OLD and write the new tree into DIR (must not exist or be empty)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || patch == "" || out == "" {
				return errors.New("patch apply needs --from, --patch and --out")
			}
			oldFS, closeOld, err := openTree(from)
			if err != nil {
				return err
			}
			defer closeOld()
			f, err := os.Open(patch)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := delta.Apply(cmd.Context(), oldFS, f, out); err != nil {
				return fmt.Errorf("patch apply: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "old tree: folder or .zip")
	c.Flags().StringVar(&patch, "patch", "", "patch file")
	c.Flags().StringVar(&out, "out", "", "folder to create with the new tree")
	return c
}

func newPatchInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info PATCH",
		Short: "Print a patch's header",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, err := delta.ReadHeader(f)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version %d\nold tree %s\nnew tree %s\nfiles %d\nsize %d\n",
				h.Version, h.OldTreeHash, h.NewTreeHash, h.Files, h.NewSize)
			return nil
		},
	}
}

// openTree opens a folder or a .zip file as an fs.FS.
func openTree(p string) (fs.FS, func() error, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return os.DirFS(p), func() error { return nil }, nil
	}
	if !strings.EqualFold(filepath.Ext(p), ".zip") {
		if ok, _ := isZip(p); !ok {
			return nil, nil, fmt.Errorf("%s: not a folder or a .zip file", p)
		}
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return zr, zr.Close, nil
}

func isZip(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var sig [4]byte
	if _, err := io.ReadFull(f, sig[:]); err != nil {
		return false, nil
	}
	return string(sig[:]) == "PK\x03\x04", nil
}
