import { useEffect, useRef, useState } from 'react';
import { InfoCard, Progress, ResponseErrorPanel, StatusOK } from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import Button from '@material-ui/core/Button';
import Chip from '@material-ui/core/Chip';
import FormControlLabel from '@material-ui/core/FormControlLabel';
import Switch from '@material-ui/core/Switch';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import TextField from '@material-ui/core/TextField';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import {
  LogLine,
  MaxcloudApiError,
  Revision,
  Revisions,
  TrafficTarget,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { errorText, formatTime, OrderState } from './common';
import { useLiveData, useMaxcloud } from './MaxcloudProvider';

/** The App's revisions, oldest first: image, share of the traffic as ordered, tags, latest and ready markers. */
export function RevisionsCard(props: { id: string; name: string }) {
  const { id, name } = props;
  const revisions = useLiveData(
    client => client.revisions(id),
    [id],
    event => event.type !== 'lagged' && event.data.kind === 'App' && event.data.name === name,
  );
  let body;
  if (revisions.value) {
    body = <RevisionsTable revisions={revisions.value} />;
  } else if (revisions.error) {
    body = <ResponseErrorPanel error={revisions.error} />;
  } else {
    body = <Progress />;
  }
  return (
    <InfoCard title="Revisions" subheader="One per deploy; the traffic split as ordered">
      {body}
    </InfoCard>
  );
}

/** `80% to r2 (tag blue)`, `100% to the latest revision`. */
function trafficText(target: TrafficTarget): string {
  const to = target.latest_revision ? 'the latest revision' : target.revision ?? 'the latest revision';
  return `${target.percent}% to ${to}${target.tag ? ` (tag ${target.tag})` : ''}`;
}

/** Whether the cluster reports the revision ready to serve (the newest ready one, or one it serves traffic to). */
function servedReady(revisions: Revisions, revision: Revision): boolean {
  const cluster = revisions.cluster;
  if (!cluster) return false;
  return (
    cluster.latest_ready === revision.name ||
    cluster.traffic.some(t => t.revision === revision.name && t.percent > 0)
  );
}

function RevisionsTable({ revisions }: { revisions: Revisions }) {
  if (revisions.revisions.length === 0) {
    // Deploys through the services API (`maxcloud deploy`) name their revisions; an App ordered through the
    // catalog has none, and its traffic goes to whatever revision is the latest.
    return (
      <Typography variant="body2" color="textSecondary" data-testid="revisions-none">
        No named revisions: revisions are named by deploys through the services API (<code>maxcloud deploy</code>).
        Requests go {revisions.traffic.map(trafficText).join(', ') || 'to the latest revision'}.
      </Typography>
    );
  }
  return (
    <Table size="small" data-testid="revisions">
      <TableHead>
        <TableRow>
          <TableCell>Revision</TableCell>
          <TableCell>Image</TableCell>
          <TableCell align="right">Traffic</TableCell>
          <TableCell>Tags</TableCell>
          <TableCell>Order</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {revisions.revisions.map(revision => {
          const ready = servedReady(revisions, revision);
          return (
            <TableRow
              key={revision.name}
              data-testid="revision"
              data-name={revision.name}
              data-percent={revision.percent}
              data-latest={revision.latest ? 'true' : 'false'}
              data-ready={ready ? 'true' : 'false'}
            >
              <TableCell>
                <Box display="flex" alignItems="center" style={{ gap: 8 }}>
                  <strong>{revision.name}</strong>
                  {revision.latest ? (
                    <Chip size="small" color="primary" label="latest" data-testid="revision-latest" />
                  ) : null}
                  {ready ? <StatusOK>ready</StatusOK> : null}
                </Box>
                <Typography variant="caption" color="textSecondary">
                  {formatTime(revision.created_at)}
                </Typography>
              </TableCell>
              <TableCell>
                <code>{revision.image}</code>
              </TableCell>
              <TableCell align="right" data-testid="revision-percent">
                {revision.percent}%
              </TableCell>
              <TableCell data-testid="revision-tags">
                {(revision.tags ?? []).map(tag => (
                  <Chip key={tag} size="small" variant="outlined" label={tag} style={{ marginRight: 4 }} />
                ))}
              </TableCell>
              <TableCell>
                <OrderState state={revision.order_state} testId="revision-order-state" />
              </TableCell>
            </TableRow>
          );
        })}
      </TableBody>
    </Table>
  );
}

/** The line counts a user can ask for (the order service accepts 1–10000; it sends 100 by default). */
export const LOG_TAILS = [20, 100, 500, 1000, 5000];

/**
 * The App's container logs: the last `tail` lines of every pod of every revision, oldest first; with "Follow"
 * the stream stays open and new lines are appended as the containers print them. The stream is closed when
 * following is switched off, the tail changes or the panel goes away.
 */
export function LogsCard(props: { id: string; name: string }) {
  const { id } = props;
  const { client } = useMaxcloud();
  const [tail, setTail] = useState(100);
  const [follow, setFollow] = useState(false);
  const [reload, setReload] = useState(0);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const bottom = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const abort = new AbortController();
    // Lines arrive one event each: they are shown in batches, at most every 100 ms.
    let received: LogLine[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const keep = Math.max(tail, 1000);
    const flush = () => {
      timer = undefined;
      if (abort.signal.aborted) return;
      const batch = received;
      received = [];
      setLines(shown => {
        const all = shown.concat(batch);
        return all.length > keep ? all.slice(all.length - keep) : all;
      });
    };
    setLines([]);
    setError(undefined);
    setLoading(true);
    (async () => {
      try {
        for await (const line of client.logs(id, { tail, follow, signal: abort.signal })) {
          received.push(line);
          timer ??= setTimeout(flush, 100);
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(e as Error);
      } finally {
        if (!abort.signal.aborted) {
          clearTimeout(timer);
          flush();
          setLoading(false);
        }
      }
    })();
    // With follow the first lines may take long: the view is no longer "loading" once the stream is asked for.
    if (follow) setLoading(false);
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [client, id, tail, follow, reload]);

  useEffect(() => {
    if (follow) bottom.current?.scrollIntoView?.({ block: 'nearest' });
  }, [lines, follow]);

  let body;
  if (error) {
    const unavailable = error instanceof MaxcloudApiError && error.status === 503;
    body = unavailable ? (
      <Alert severity="info" data-testid="logs-unavailable">
        No logs to show: {errorText(error)}
      </Alert>
    ) : (
      <Alert severity="error" data-testid="logs-error">
        The logs could not be read: {errorText(error)}
      </Alert>
    );
  } else if (loading && lines.length === 0) {
    body = <Progress />;
  } else if (lines.length === 0) {
    body = (
      <Typography variant="body2" color="textSecondary" data-testid="logs-empty">
        {follow ? 'No lines yet; new lines appear here as they are printed.' : 'No lines.'}
      </Typography>
    );
  } else {
    body = (
      <Box
        data-testid="log-lines"
        style={{
          fontFamily: 'monospace',
          fontSize: 12,
          maxHeight: 420,
          overflow: 'auto',
          whiteSpace: 'pre-wrap',
          wordBreak: 'break-all',
        }}
      >
        {lines.map((line, i) => (
          <div
            key={i}
            data-testid="log-line"
            data-revision={line.revision ?? ''}
            data-pod={line.pod}
          >
            <span style={{ opacity: 0.7 }}>{line.time ? formatLogTime(line.time) : '—'}</span>{' '}
            <span style={{ opacity: 0.7 }}>[{line.revision ?? line.pod}]</span> {line.line}
          </div>
        ))}
        <div ref={bottom} />
      </Box>
    );
  }

  return (
    <InfoCard title="Logs" subheader="Container output of every revision, oldest first">
      <Box display="flex" alignItems="center" flexWrap="wrap" style={{ gap: 16 }} mb={2}>
        <TextField
          select
          size="small"
          variant="outlined"
          style={{ minWidth: 120 }}
          label="Last lines"
          value={tail}
          onChange={e => setTail(Number(e.target.value))}
          SelectProps={{ native: true }}
          InputLabelProps={{ shrink: true }}
          inputProps={{ 'data-testid': 'logs-tail' }}
        >
          {LOG_TAILS.map(n => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </TextField>
        <FormControlLabel
          control={
            <Switch
              checked={follow}
              onChange={e => setFollow(e.target.checked)}
              color="primary"
              inputProps={{ 'aria-label': 'Follow', ...({ 'data-testid': 'logs-follow' } as object) }}
            />
          }
          label="Follow"
        />
        {follow && !error ? (
          <Chip size="small" variant="outlined" color="primary" label="following" data-testid="logs-following" />
        ) : null}
        {!follow ? (
          <Button size="small" variant="outlined" onClick={() => setReload(r => r + 1)} data-testid="logs-refresh">
            Refresh
          </Button>
        ) : null}
      </Box>
      {body}
    </InfoCard>
  );
}

/** `2026-11-21 19:43:32.988` in local time: log lines need the milliseconds. */
function formatLogTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}
