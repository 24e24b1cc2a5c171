package store

// RollbackHistoryDepth is how many of a channel's newest history entries a rollback
// reads to find its target; retention reads as many to keep that target.
const RollbackHistoryDepth = 200

// ActionRollback is the history action of a rollback.
const ActionRollback = "rollback"

// RollbackCandidates returns, in the order a rollback tries them, the releases a
// channel whose stable release is current may be rolled back to, read from its
// history (newest first): the stable releases it served, newest first, other than
// current, built-in states, and any release a rollback moved away from (so repeating
// a rollback, a retried command, never brings back the release it rolled back from).
// A rollback takes the first that is still a ready release.
func RollbackCandidates(hist []ChannelEvent, current string) []string {
	rolledBack := map[string]bool{}
	for i, e := range hist { // hist[i+1] is the state e replaced
		if e.Action == ActionRollback && i+1 < len(hist) && !hist[i+1].Channel.Builtin {
			rolledBack[hist[i+1].Channel.Stable] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range hist {
		v := e.Channel.Stable
		if v == "" || v == current || e.Channel.Builtin || rolledBack[v] || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}
