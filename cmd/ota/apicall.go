package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// apiCall is the shape of most commands: check the flags and arguments, make one
// management API call, then print the answer: as JSON with --json, else for people.
// Its run method is the command's RunE, e.g.
//
//	RunE: apiCall[[]release.Channel]{
//		g: g, app: &app,
//		call: func(ctx context.Context, cl *client, _ []string) ([]release.Channel, error) {
//			return cl.listChannels(ctx, app)
//		},
//		json:  listIn[release.Channel]("channels"),
//		human: printChannels,
//	}.run,
type apiCall[T any] struct {
	g       *globals
	app     *string                                       // --app, checked first with needApp (nil: no --app)
	channel *string                                       // --channel, then checked with needChannel (nil: none)
	check   func(cmd *cobra.Command, args []string) error // further checks, before any request (optional)
	call    func(ctx context.Context, cl *client, args []string) (T, error)
	json    func(v T) any                // what --json prints (nil: the answer itself)
	human   func(w io.Writer, v T) error // what is printed without --json
	note    string                       // said on stderr after the human output (optional)
}

// run checks --app, --channel and check, in that order and before any request, then
// calls and prints.
func (a apiCall[T]) run(cmd *cobra.Command, args []string) error {
	if a.app != nil {
		if err := needApp(*a.app); err != nil {
			return err
		}
	}
	if a.channel != nil {
		if err := needChannel(*a.channel); err != nil {
			return err
		}
	}
	if a.check != nil {
		if err := a.check(cmd, args); err != nil {
			return err
		}
	}
	cl, err := a.g.client()
	if err != nil {
		return err
	}
	v, err := a.call(cmd.Context(), cl, args)
	if err != nil {
		return err
	}
	if a.g.json {
		if a.json != nil {
			return writeJSONOut(cmd.OutOrStdout(), a.json(v))
		}
		return writeJSONOut(cmd.OutOrStdout(), v)
	}
	if err := a.human(cmd.OutOrStdout(), v); err != nil {
		return err
	}
	if a.note != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), a.note)
	}
	return nil
}

// inKey is the --json form {key: answer}.
func inKey[T any](key string) func(T) any {
	return func(v T) any { return map[string]any{key: v} }
}

// listIn is the --json form {key: [...]} of a list: [] (not null) when it is empty.
func listIn[E any](key string) func([]E) any {
	return func(s []E) any {
		if s == nil {
			s = []E{}
		}
		return map[string]any{key: s}
	}
}
