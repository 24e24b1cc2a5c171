package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// Release safety commands: staged rollouts, rollback, status, stats, audit, cleanup.

func newSafetyCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newRolloutCmd(g), newRollbackCmd(g), newStatusCmd(g), newStatsCmd(g), newAuditCmd(g), newCleanupCmd(g)}
}

// cacheNote is printed after a channel change: checks served by other processes see
// it once their cached channel state expires.
const cacheNote = "devices see this on their next check (servers cache channel state for a few seconds: 5 s by default)"

// ---- client calls

func channelPath(app, channel string) string {
	return "/v1/apps/" + esc(app) + "/channels/" + esc(channel)
}

func (c *client) rolloutSet(ctx context.Context, app, channel, version string, percent float64) (release.Channel, error) {
	var out wire.ChannelAnswer
	in := wire.RolloutInput{Version: version, Percent: &percent}
	return out.Channel, c.do(ctx, "PUT", channelPath(app, channel)+"/rollout", in, &out)
}

func (c *client) rolloutAct(ctx context.Context, app, channel, action string) (release.Channel, error) {
	var out wire.ChannelAnswer
	return out.Channel, c.do(ctx, "POST", channelPath(app, channel)+"/rollout/"+esc(action), map[string]any{}, &out)
}

func (c *client) rollbackChannel(ctx context.Context, app, channel string, in wire.RollbackInput) (release.Channel, error) {
	var out wire.ChannelAnswer
	return out.Channel, c.do(ctx, "POST", channelPath(app, channel)+"/rollback", in, &out)
}

func (c *client) setPolicy(ctx context.Context, app, channel string, in wire.ChannelInput) (release.Channel, error) {
	var out wire.ChannelAnswer
	return out.Channel, c.do(ctx, "PUT", channelPath(app, channel), in, &out)
}

type statusAnswer struct {
	wire.StatusAnswer
	sent any // the answer as the server sent it (what --json prints)
}

func (c *client) appStatus(ctx context.Context, app string) (statusAnswer, error) {
	var out statusAnswer
	err := c.getAsSent(ctx, "/v1/apps/"+esc(app)+"/status", &out, &out.sent)
	return out, err
}

type statsAnswer struct {
	wire.StatsAnswer
	sent any // the answer as the server sent it (what --json prints)
}

func (c *client) appStats(ctx context.Context, app, channel string, days int) (statsAnswer, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if days > 0 {
		q.Set("days", strconv.Itoa(days))
	}
	path := "/v1/apps/" + esc(app) + "/stats"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out statsAnswer
	err := c.getAsSent(ctx, path, &out, &out.sent)
	return out, err
}

// getAsSent GETs path and decodes the answer into out, and into sent as generic
// JSON, so that --json prints it as the server sent it (keys sorted).
func (c *client) getAsSent(ctx context.Context, path string, out any, sent *any) error {
	var raw json.RawMessage
	if err := c.do(ctx, "GET", path, nil, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return err
	}
	return json.Unmarshal(raw, sent)
}

func (c *client) auditLog(ctx context.Context, app string, limit int) ([]store.AuditEntry, error) {
	var out wire.AuditAnswer
	path := "/v1/apps/" + esc(app) + "/audit"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	return out.Entries, c.do(ctx, "GET", path, nil, &out)
}

func (c *client) cleanupApp(ctx context.Context, app string, keep int, dry, now bool) (publish.Report, error) {
	var out wire.CleanupAnswer
	body := wire.CleanupInput{Keep: &keep, DryRun: dry, Now: now}
	return out.Report, c.do(ctx, "POST", "/v1/apps/"+esc(app)+"/cleanup", body, &out)
}

// ---- flag checks (before any request)

func needChannel(channel string) error {
	if channel == "" {
		return errors.New("--channel is required (e.g. production)")
	}
	if err := release.ValidChannel(channel); err != nil {
		return fmt.Errorf("--channel: %w", err)
	}
	return nil
}

func needVersion(flag, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", flag)
	}
	if err := release.ValidVersion(v); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

// parseRate reads a failure rate as a fraction (0.2) or a percentage (20%).
func parseRate(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err == nil && pct {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		return 0, fmt.Errorf("--max-failure-rate %q: give a fraction in (0, 1] like 0.2, or a percentage like 20%%", s)
	}
	return f, nil
}

// ---- printing

// printChangedChannel prints a channel that a rollout or rollback command changed.
func printChangedChannel(w io.Writer, c release.Channel) error {
	if err := printChannel(w, channelOut{Channel: c}); err != nil {
		return err
	}
	if c.Rolling != nil && c.Rolling.HaltReason != "" {
		fmt.Fprintln(w, "halt reason: "+c.Rolling.HaltReason)
	}
	return nil
}

func fmtPolicy(p release.Policy) string {
	e := p.Effective()
	s := fmt.Sprintf("halt above %g%% after %d", e.MaxFailureRate*100, e.MinAttempts)
	if p.MaxFailureRate <= 0 && p.MinAttempts <= 0 {
		s += " (default)"
	}
	return s
}

func fmtRate(failed, total int64) string {
	if total == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d (%.1f%%)", failed, total, float64(failed)*100/float64(total))
}

func printStatus(w io.Writer, st statusAnswer) error {
	if len(st.Channels) == 0 {
		_, err := fmt.Fprintln(w, "no channels (set one with: ota channel set CHANNEL --app APP_ID --version V)")
		return err
	}
	t := newTable(w, "CHANNEL", "STABLE", "ROLLOUT", "STATE", "FAILED/ATTEMPTS", "AUTO-HALT", "UPDATED")
	var reasons []string
	for _, c := range st.Channels {
		stable := c.Stable
		if c.Builtin {
			stable = "builtin"
		}
		rollout, state, health := "", "stable only", ""
		if ro := c.Rolling; ro != nil {
			rollout = fmt.Sprintf("%s at %g%%", ro.Version, ro.Percent)
			state = "rolling out"
			if ro.Halted {
				state = "HALTED"
				if ro.HaltReason != "" {
					reasons = append(reasons, c.Name+": "+ro.HaltReason)
				}
			}
			if h := c.RolloutHealth; h != nil {
				health = fmtRate(h.Failures, h.Attempts)
			}
		}
		t.row(c.Name, stable, rollout, state, health, fmtPolicy(c.Policy), fmtTime(c.UpdatedAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range reasons {
		fmt.Fprintln(w, "halted "+r)
	}
	if st.CacheSeconds > 0 {
		fmt.Fprintf(w, "channel changes reach devices within %g s (state cache)\n", st.CacheSeconds)
	}
	return nil
}

func printStats(w io.Writer, st statsAnswer) error {
	if len(st.Days) > 0 {
		fmt.Fprintf(w, "%s to %s (UTC days)\n\n", st.Days[0], st.Days[len(st.Days)-1])
	}
	if len(st.Adoption) > 0 {
		t := newTable(w, "VERSION", "DEVICES ON IT")
		for _, a := range st.Adoption {
			t.row(a.Version, strconv.FormatInt(a.Devices, 10))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(st.Versions) > 0 {
		t := newTable(w, "VERSION", "INSTALLED", "FAILED", "CRASHED", "SUCCESS RATE")
		for _, v := range st.Versions {
			t.row(v.Version, strconv.FormatInt(v.Installed, 10), strconv.FormatInt(v.Failed, 10), strconv.FormatInt(v.Crashed, 10),
				fmt.Sprintf("%.1f%%", v.SuccessRate*100))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(st.Counts) == 0 {
		_, err := fmt.Fprintln(w, "no events in this period")
		return err
	}
	t := newTable(w, "DAY", "CHANNEL", "VERSION", "ACTION", "COUNT")
	for _, c := range st.Counts {
		t.row(c.Day, c.Channel, c.Version, c.Action, strconv.FormatInt(c.Count, 10))
	}
	return t.flush()
}

func printAudit(w io.Writer, entries []store.AuditEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no audit entries")
		return err
	}
	t := newTable(w, "AT", "KEY", "ACTION", "TARGET", "DETAIL")
	for _, e := range entries {
		t.row(e.At.UTC().Format("2006-01-02 15:04:05Z"), e.KeyID, e.Action, e.Target, e.Detail)
	}
	return t.flush()
}

func printCleanup(w io.Writer, r publish.Report) error {
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
		fmt.Fprintln(w, "dry run: nothing was deleted")
	}
	deleted := strings.Join(r.Deleted, ", ")
	if deleted == "" {
		deleted = "none"
	}
	fmt.Fprintf(w, "releases %s: %s\n", verb, deleted)
	if len(r.Kept) > 0 {
		t := newTable(w, "KEPT", "WHY")
		for _, k := range r.Kept {
			t.row(k.Version, k.Reason)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "patch records %s: %d; objects %s: %d files, %d patches, %d orphans\n", verb, r.Patches, verb, r.Files, r.PatchObjects, r.Orphans)
	if r.RecentObjects > 0 {
		fmt.Fprintf(w, "%d unreferenced objects kept: younger than %v (a publish may still need them)\n", r.RecentObjects, publish.CleanupMinAge)
		switch {
		case r.RecentReason != "":
			fmt.Fprintln(w, "young files kept: "+r.RecentReason)
		case !r.Now:
			fmt.Fprintln(w, "to reclaim the space of deleted releases at once (e.g. after a full disk), run again with --now")
		}
	}
	if r.FileSweep != "" && r.FileSweep != "done" {
		fmt.Fprintln(w, "files: "+r.FileSweep)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "error: "+e)
	}
	return nil
}

// ---- commands

func newRolloutCmd(g *globals) *cobra.Command {
	var app, channel, version string
	var percent float64
	cmd := &cobra.Command{
		Use:   "rollout --app APP_ID --channel C --version V --percent P",
		Short: "Roll a release out to a share of a channel's devices (and promote, halt or resume it)",
		Long: "Start a staged rollout of a ready release to PERCENT of the channel's devices, or change the\n" +
			"percentage of the running one. A device's bucket depends only on its id and the rollout, so\n" +
			"raising the percentage only adds devices. Devices that send no id get the stable release.\n\n" +
			"A rollout halts itself when more than 20% of its installs fail after 50 attempts (change it\n" +
			"with `ota rollout policy`); halted, every device gets the stable release again.",
		Example: "  ota rollout --app com.example.app --channel production --version 1.2.0 --percent 10\n" +
			"  ota rollout --app com.example.app --channel production --version 1.2.0 --percent 50\n" +
			"  ota rollout promote --app com.example.app --channel production",
		Args: cobra.NoArgs,
		RunE: apiCall[release.Channel]{
			g: g, app: &app, channel: &channel,
			check: func(cmd *cobra.Command, _ []string) error {
				if err := needVersion("--version", version); err != nil {
					return err
				}
				if !cmd.Flags().Changed("percent") {
					return errors.New("--percent is required (0 to 100)")
				}
				if percent < 0 || percent > 100 {
					return fmt.Errorf("--percent %g: must be between 0 and 100", percent)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) (release.Channel, error) {
				return cl.rolloutSet(ctx, app, channel, version, percent)
			},
			json:  inKey[release.Channel]("channel"),
			human: printChangedChannel,
			note:  cacheNote,
		}.run,
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "app id (required)")
	fl.StringVar(&channel, "channel", "", "channel (required)")
	fl.StringVar(&version, "version", "", "ready release to roll out (required)")
	fl.Float64Var(&percent, "percent", 0, "share of the channel's devices, 0 to 100 (required)")
	for _, a := range []struct{ name, short string }{
		{"promote", "Make the rolling release the channel's stable release"},
		{"halt", "Stop the rollout: every device gets the stable release"},
		{"resume", "Resume a halted rollout"},
	} {
		cmd.AddCommand(newRolloutActionCmd(g, a.name, a.short))
	}
	cmd.AddCommand(newRolloutPolicyCmd(g))
	return cmd
}

func newRolloutActionCmd(g *globals, action, short string) *cobra.Command {
	var app, channel string
	cmd := &cobra.Command{
		Use:   action + " --app APP_ID --channel C",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: apiCall[release.Channel]{
			g: g, app: &app, channel: &channel,
			call: func(ctx context.Context, cl *client, _ []string) (release.Channel, error) {
				return cl.rolloutAct(ctx, app, channel, action)
			},
			json:  inKey[release.Channel]("channel"),
			human: printChangedChannel,
			note:  cacheNote,
		}.run,
	}
	cmd.Flags().StringVar(&app, "app", "", "app id (required)")
	cmd.Flags().StringVar(&channel, "channel", "", "channel (required)")
	return cmd
}

func newRolloutPolicyCmd(g *globals) *cobra.Command {
	var app, channel, rate string
	var minAttempts int64
	var in wire.ChannelInput
	cmd := &cobra.Command{
		Use:   "policy --app APP_ID --channel C [--max-failure-rate 20%] [--min-attempts 50]",
		Short: "Set when a channel's rollouts halt themselves",
		Long: "A rollout halts itself when failed/attempted installs exceed --max-failure-rate once it has\n" +
			"at least --min-attempts installs. Defaults: 20% after 50.",
		Example: "  ota rollout policy --app com.example.app --channel production --max-failure-rate 5% --min-attempts 200",
		Args:    cobra.NoArgs,
		RunE: apiCall[release.Channel]{
			g: g, app: &app, channel: &channel,
			check: func(cmd *cobra.Command, _ []string) error {
				in = wire.ChannelInput{}
				if cmd.Flags().Changed("max-failure-rate") {
					f, err := parseRate(rate)
					if err != nil {
						return err
					}
					in.MaxFailureRate = &f
				}
				if cmd.Flags().Changed("min-attempts") {
					if minAttempts < 1 {
						return errors.New("--min-attempts must be at least 1")
					}
					in.MinAttempts = &minAttempts
				}
				if in.MaxFailureRate == nil && in.MinAttempts == nil {
					return errors.New("nothing to set: give --max-failure-rate and/or --min-attempts")
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) (release.Channel, error) {
				return cl.setPolicy(ctx, app, channel, in)
			},
			json: inKey[release.Channel]("channel"),
			human: func(w io.Writer, c release.Channel) error {
				_, err := fmt.Fprintf(w, "channel %s: %s\n", c.Name, fmtPolicy(c.Policy))
				return err
			},
		}.run,
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "app id (required)")
	fl.StringVar(&channel, "channel", "", "channel (required)")
	fl.StringVar(&rate, "max-failure-rate", "", "failed/attempted installs above which a rollout halts (0.2 or 20%)")
	fl.Int64Var(&minAttempts, "min-attempts", 0, "installs a rollout needs before it can halt itself")
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	var app, channel, to string
	var builtin bool
	cmd := &cobra.Command{
		Use:   "rollback --app APP_ID --channel C [--to V | --builtin]",
		Short: "Point a channel back at an earlier release (or the bundle inside the app binary)",
		Long: "Roll a channel back and drop its rollout, in one conditional write. Without --to, the channel\n" +
			"goes back to the stable release it served before (never to one it was rolled back from);\n" +
			"--builtin sends devices back to the bundle shipped in the store binary. Devices see it on\n" +
			"their next check (within the servers' state cache time, 5 s by default).",
		Example: "  ota rollback --app com.example.app --channel production\n" +
			"  ota rollback --app com.example.app --channel production --to 1.1.0\n" +
			"  ota rollback --app com.example.app --channel production --builtin",
		Args: cobra.NoArgs,
		RunE: apiCall[release.Channel]{
			g: g, app: &app, channel: &channel,
			check: func(cmd *cobra.Command, _ []string) error {
				if to != "" && builtin {
					return errors.New("give --to or --builtin, not both")
				}
				if cmd.Flags().Changed("to") {
					return needVersion("--to", to)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) (release.Channel, error) {
				return cl.rollbackChannel(ctx, app, channel, wire.RollbackInput{To: to, Builtin: builtin})
			},
			json:  inKey[release.Channel]("channel"),
			human: printChangedChannel,
			note:  cacheNote,
		}.run,
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "app id (required)")
	fl.StringVar(&channel, "channel", "", "channel (required)")
	fl.StringVar(&to, "to", "", "ready release to go back to (default: the previous stable release)")
	fl.BoolVar(&builtin, "builtin", false, "send devices back to the bundle inside the app binary")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "status --app APP_ID",
		Short: "Show what each channel serves, its rollout and whether it halted",
		Args:  cobra.NoArgs,
		RunE: apiCall[statusAnswer]{
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, _ []string) (statusAnswer, error) {
				return cl.appStatus(ctx, app)
			},
			json:  func(st statusAnswer) any { return st.sent },
			human: printStatus,
		}.run,
	}
	cmd.Flags().StringVar(&app, "app", "", "app id (required)")
	return cmd
}

func newStatsCmd(g *globals) *cobra.Command {
	var app, channel string
	var days int
	cmd := &cobra.Command{
		Use:   "stats --app APP_ID [--channel C] [--days N]",
		Short: "Show daily device events and the install success rate per version",
		Example: "  ota stats --app com.example.app\n" +
			"  ota stats --app com.example.app --channel beta --days 30 --json",
		Args: cobra.NoArgs,
		RunE: apiCall[statsAnswer]{
			g: g, app: &app,
			check: func(*cobra.Command, []string) error {
				if channel != "" {
					if err := needChannel(channel); err != nil {
						return err
					}
				}
				if days < 1 || days > 366 {
					return fmt.Errorf("--days %d: must be between 1 and 366", days)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) (statsAnswer, error) {
				return cl.appStats(ctx, app, channel, days)
			},
			json:  func(st statsAnswer) any { return st.sent },
			human: printStats,
		}.run,
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "app id (required)")
	fl.StringVar(&channel, "channel", "", "only this channel")
	fl.IntVar(&days, "days", 7, "number of days up to today (UTC), 1 to 366")
	return cmd
}

func newAuditCmd(g *globals) *cobra.Command {
	var app string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit --app APP_ID [--limit N]",
		Short: "Show who changed what on an app, newest first",
		Args:  cobra.NoArgs,
		RunE: apiCall[[]store.AuditEntry]{
			g: g, app: &app,
			check: func(*cobra.Command, []string) error {
				if limit < 1 || limit > 1000 {
					return fmt.Errorf("--limit %d: must be between 1 and 1000", limit)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) ([]store.AuditEntry, error) {
				return cl.auditLog(ctx, app, limit)
			},
			json:  listIn[store.AuditEntry]("entries"),
			human: printAudit,
		}.run,
	}
	cmd.Flags().StringVar(&app, "app", "", "app id (required)")
	cmd.Flags().IntVar(&limit, "limit", 50, "entries to show, 1 to 1000")
	return cmd
}

func newCleanupCmd(g *globals) *cobra.Command {
	var app string
	var keep int
	var dry, now bool
	cmd := &cobra.Command{
		Use:   "cleanup --app APP_ID --keep N [--dry-run] [--now]",
		Short: "Delete old releases no channel needs, and files and patches nothing references",
		Long: "Keep the newest N ready releases and delete older ready or failed ones, unless a channel can\n" +
			"still reach them: it serves them (stable or rollout), `ota rollback` would go back to them, or\n" +
			"its last 20 history entries name them. Their bundles, manifests and patches go too, then\n" +
			"content-addressed files and patches no remaining release uses. Objects younger than an hour\n" +
			"are kept (a publish may be using them); --now deletes young objects of deleted releases too\n" +
			"(after a full disk), except files while any release is still pending with its upload.",
		Example: "  ota cleanup --app com.example.app --keep 10 --dry-run\n" +
			"  ota cleanup --app com.example.app --keep 10\n" +
			"  ota cleanup --app com.example.app --keep 3 --now",
		Args: cobra.NoArgs,
		RunE: apiCall[publish.Report]{
			g: g, app: &app,
			check: func(cmd *cobra.Command, _ []string) error {
				if !cmd.Flags().Changed("keep") {
					return errors.New("--keep is required (the number of newest releases to keep)")
				}
				if keep < 1 {
					return fmt.Errorf("--keep %d: must be at least 1", keep)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client, _ []string) (publish.Report, error) {
				return cl.cleanupApp(ctx, app, keep, dry, now)
			},
			json:  inKey[publish.Report]("report"),
			human: printCleanup,
		}.run,
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "app id (required)")
	fl.IntVar(&keep, "keep", 0, "newest ready releases to keep, at least 1 (required)")
	fl.BoolVar(&dry, "dry-run", false, "show what would be deleted, delete nothing")
	fl.BoolVar(&now, "now", false, "also delete objects of deleted releases younger than an hour (reclaim space at once)")
	return cmd
}
