// Cluster membership and replication health, as the answering node sees its peers.

import { api } from '../api.js';
import { h, fill, fmtClock } from '../dom.js';
import { poll } from '../poll.js';

export function mount(view, { signal }) {
  const summary = h('section', { class: 'cards' });
  const warning = h('div');
  const table = h('div');
  const updated = h('span', { class: 'muted small' });
  view.append(h('div', { class: 'page-head' }, h('h1', {}, 'Cluster'), updated), summary, warning, table);
  fill(table, h('p', { class: 'muted' }, 'Loading…'));

  return poll(signal, 2000, async () => {
    const { nodes = [] } = await api('/v1/cluster/nodes', { signal });
    render(nodes);
    updated.textContent = `updated ${fmtClock(Date.now())}`;
  });

  function render(nodes) {
    const up = nodes.filter((n) => n.status);
    // Nodes can briefly disagree during an election: trust the highest term.
    const byTerm = [...up].sort((a, b) => b.status.term - a.status.term);
    const term = byTerm[0]?.status.term;
    const leaderId = byTerm.find((n) => n.status.leader_id != null)?.status.leader_id ?? null;
    const leader = nodes.find((n) => n.id === leaderId)?.status ?? null;
    // Followers keep naming a dead leader until their election timeout fires.
    const leaderLost = leaderId != null && !leader;
    const voters = nodes.filter((n) => n.voter);
    const votersUp = voters.filter((n) => n.status).length;
    const majority = Math.floor(voters.length / 2) + 1;

    fill(
      summary,
      card('Leader', leaderId == null ? h('span', { testid: 'leader-id', class: 'bad' }, '—') : ['node ', h('span', { testid: 'leader-id' }, leaderId), leaderLost ? h('span', { class: 'bad small' }, ' unreachable') : null]),
      card('Term', h('span', { testid: 'term' }, term ?? '—')),
      card('Voters reachable', h('span', { testid: 'voters-up', class: votersUp < majority ? 'bad' : '' }, `${votersUp} / ${voters.length}`)),
      card('Leader log', leader ? `last ${leader.last_log_index} · applied ${leader.applied_index}` : '—'),
      card('Leader snapshot', leader ? `at ${leader.snapshot_index} · purged to ${leader.purged_index}` : '—'),
      card('Behaviour version', h('span', { testid: 'behaviour-version' }, leader?.behaviour_version ?? '—')),
    );

    if (leaderId == null || leaderLost || votersUp < majority) {
      const why =
        votersUp < majority
          ? `Only ${votersUp} of ${voters.length} voters are reachable; ${majority} are needed for a quorum.`
          : leaderLost
            ? `Node ${leaderId} is named leader but cannot be reached; an election should follow.`
            : 'No reachable node reports a leader (an election may be under way).';
      fill(warning, h('div', { class: 'banner warn', testid: 'no-quorum-warning', role: 'alert' }, h('strong', {}, 'No quorum / no leader'), h('span', {}, why)));
    } else {
      fill(warning);
    }

    const rows = nodes.map((n) => {
      const s = n.status;
      const lag = leader && s ? Math.max(0, leader.last_log_index - s.applied_index) : null;
      return h(
        'tr',
        { testid: `member-row-${n.id}`, class: n.id === leaderId ? 'leader-row' : '' },
        h('td', { class: 'num' }, n.id),
        h('td', { class: 'mono' }, n.addr),
        h('td', {}, n.voter ? 'voter' : 'learner'),
        h('td', {}, n.id === leaderId ? h('span', { class: 'badge leader', testid: `leader-mark-${n.id}` }, '★ leader') : ''),
        h('td', { class: 'num' }, s ? s.term : '—'),
        h('td', { class: 'num' }, s ? s.applied_index : '—'),
        h('td', { class: 'num' }, s ? s.last_log_index : '—'),
        h('td', { class: `num ${lag > 100 ? 'bad' : ''}` }, lag ?? '—'),
        h('td', { class: 'num', title: 'the highest behaviour version this node accepts' }, s?.behaviour_version_max ?? '—'),
        h('td', { testid: `health-${n.id}` }, s ? h('span', { class: 'ok' }, 'reachable') : h('span', { class: 'bad', title: n.error ?? '' }, n.error || 'unreachable')),
        h('td', { class: 'num' }, n.rtt_ms == null ? '—' : `${n.rtt_ms} ms`),
      );
    });
    fill(
      table,
      h(
        'table',
        { class: 'grid', testid: 'members' },
        h('thead', {}, h('tr', {}, ['Id', 'Address', 'Role', '', 'Term', 'Applied', 'Last log', 'Lag', 'Accepts ≤', 'Health', 'RTT'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows),
      ),
      h('p', { class: 'muted small' }, 'Lag: the leader’s last log index minus the node’s applied index. Accepts ≤: the highest behaviour version the node’s build accepts; the leader raises the cluster’s version once every member accepts it.'),
    );
  }
}

function card(label, value) {
  return h('div', { class: 'card' }, h('div', { class: 'card-label' }, label), h('div', { class: 'card-value' }, value));
}
