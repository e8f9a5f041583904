import { InfoCard, Progress, ResponseErrorPanel } from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import Chip from '@material-ui/core/Chip';
import Grid from '@material-ui/core/Grid';
import LinearProgress from '@material-ui/core/LinearProgress';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import {
  Invoice,
  MaxcloudApiError,
  Quota,
  QuotaLimits,
  SecretInfo,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { errorText, formatTime, ResourceStatus } from './common';
import { useLiveData, useMaxcloud } from './MaxcloudProvider';

/**
 * `costs`: the organisation's quotas (limit and use), the running month's invoice preview (admins only: it is
 * billing data) and its secrets (names and key names; values are never fetched).
 */
export function CostsPage() {
  return (
    <Grid container spacing={3} data-testid="costs-page">
      <Grid item xs={12} md={6}>
        <QuotasCard />
      </Grid>
      <Grid item xs={12} md={6}>
        <SecretsCard />
      </Grid>
      <Grid item xs={12}>
        <InvoiceCard />
      </Grid>
    </Grid>
  );
}

const GIB = 1024 ** 3;
const NOWRAP = { whiteSpace: 'nowrap' } as const;

/** The quotas the platform sets, in people's units. */
const QUOTA_ROWS: Array<{
  key: keyof QuotaLimits;
  label: string;
  unit: (value: number) => string;
}> = [
  { key: 'services', label: 'Services', unit: v => String(v) },
  { key: 'databases', label: 'Databases', unit: v => String(v) },
  { key: 'max_scale', label: 'Instances at maximum scale', unit: v => String(v) },
  { key: 'cpu_milli', label: 'vCPU at maximum scale', unit: v => `${trim(v / 1000)} vCPU` },
  { key: 'memory_bytes', label: 'Memory at maximum scale', unit: v => `${trim(v / GIB)} GiB` },
];

function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

function QuotasCard() {
  const quota = useLiveData(
    client => client.quotas(),
    [],
    // every order may raise or lower a total
    event => event.type === 'order',
  );
  let body;
  if (quota.value) body = <QuotaTable quota={quota.value} />;
  else if (quota.error) body = <ResponseErrorPanel error={quota.error} />;
  else body = <Progress />;
  return (
    <InfoCard
      title="Limits"
      subheader="What your organisation's resources add up to, pending orders included; orders beyond a limit are refused"
    >
      {body}
    </InfoCard>
  );
}

function QuotaTable({ quota }: { quota: Quota }) {
  return (
    <Table size="small" data-testid="quotas">
      <TableHead>
        <TableRow>
          <TableCell />
          <TableCell align="right">Used</TableCell>
          <TableCell align="right">Limit</TableCell>
          <TableCell style={{ width: '25%' }} />
        </TableRow>
      </TableHead>
      <TableBody>
        {QUOTA_ROWS.map(row => {
          const used = quota.used[row.key];
          const limit = quota.limits[row.key];
          const limited = limit !== null && limit !== undefined;
          let share = 0;
          if (limited) share = limit > 0 ? Math.min(100, (used / limit) * 100) : 100;
          return (
            <TableRow
              key={row.key}
              data-testid={`quota-${row.key}`}
              data-used={used}
              data-limit={limited ? limit : 'unlimited'}
            >
              <TableCell>{row.label}</TableCell>
              <TableCell align="right" data-testid="quota-used" style={NOWRAP}>
                {row.unit(used)}
              </TableCell>
              <TableCell align="right" data-testid="quota-limit" style={NOWRAP}>
                {limited ? row.unit(limit) : 'unlimited'}
              </TableCell>
              <TableCell>
                {limited ? (
                  <LinearProgress
                    variant="determinate"
                    value={share}
                    color={share >= 90 ? 'secondary' : 'primary'}
                    aria-label={`${row.label}: ${Math.round(share)}% of the limit`}
                  />
                ) : null}
              </TableCell>
            </TableRow>
          );
        })}
      </TableBody>
    </Table>
  );
}

function SecretsCard() {
  const secrets = useLiveData(
    client => client.secrets(),
    [],
    event => event.type === 'order' && event.data.kind === 'Secret',
  );
  let body;
  if (secrets.value?.length) body = <SecretsTable secrets={secrets.value} />;
  else if (secrets.value) {
    body = (
      <Typography variant="body2" color="textSecondary" data-testid="secrets-empty">
        Your organisation has no secrets.
      </Typography>
    );
  } else if (secrets.error) body = <ResponseErrorPanel error={secrets.error} />;
  else body = <Progress />;
  return (
    <InfoCard
      title="Secrets"
      subheader="Names and keys only: values are encrypted in your Git repository and never shown here"
    >
      {body}
    </InfoCard>
  );
}

function SecretsTable({ secrets }: { secrets: SecretInfo[] }) {
  return (
    <Table size="small" data-testid="secrets">
      <TableHead>
        <TableRow>
          <TableCell>Name</TableCell>
          <TableCell>Keys</TableCell>
          <TableCell>Status</TableCell>
          <TableCell>Updated</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {secrets.map(secret => (
          <TableRow key={secret.name} data-testid="secret" data-name={secret.name}>
            <TableCell style={NOWRAP}>
              <strong>{secret.name}</strong>
            </TableCell>
            <TableCell data-testid="secret-keys">
              {secret.keys.map(key => (
                <Chip key={key} size="small" variant="outlined" label={key} style={{ margin: 2 }} />
              ))}
            </TableCell>
            <TableCell style={NOWRAP}>
              <ResourceStatus status={secret.status} testId="secret-status" />
            </TableCell>
            <TableCell>{formatTime(secret.updated_at)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

/**
 * The running month's invoice as a preview. Members are not asked for it (the backend plugin and the order
 * service refuse them too); when the user's role is not known (the order service without the backend plugin)
 * the order service's refusal says why.
 */
function InvoiceCard() {
  const { identity, tenant } = useMaxcloud();
  const role = identity?.tenants.find(t => t.slug === tenant)?.role;
  const title = 'Invoice of this month';
  if (role === 'member') {
    return (
      <InfoCard title={title}>
        <Alert severity="info" data-testid="invoice-admins-only">
          The invoice is billing data: only admins of {tenant} see it.
        </Alert>
      </InfoCard>
    );
  }
  return <AdminInvoice title={title} />;
}

function AdminInvoice({ title }: { title: string }) {
  const invoice = useLiveData(client => client.invoice(), [], () => false);
  let body;
  if (invoice.value) {
    body = <InvoiceView invoice={invoice.value} />;
  } else if (invoice.error) {
    const forbidden = invoice.error instanceof MaxcloudApiError && invoice.error.status === 403;
    body = forbidden ? (
      <Alert severity="info" data-testid="invoice-admins-only">
        The invoice is billing data for admins: {errorText(invoice.error)}
      </Alert>
    ) : (
      <ResponseErrorPanel error={invoice.error} />
    );
  } else {
    body = <Progress />;
  }
  return <InfoCard title={title}>{body}</InfoCard>;
}

function InvoiceView({ invoice }: { invoice: Invoice }) {
  const money = (amount: string) => `${invoice.currency} ${amount}`;
  return (
    <Box data-testid="invoice" data-number={invoice.number} data-final={invoice.final ? 'true' : 'false'}>
      <Box display="flex" alignItems="center" style={{ gap: 12 }} mb={1}>
        <Typography variant="subtitle1">
          <strong>{invoice.number}</strong> · {invoice.month}
        </Typography>
        <Chip
          size="small"
          color={invoice.final ? 'primary' : 'default'}
          label={invoice.final ? 'final' : 'preview: the month is still running'}
          data-testid="invoice-final"
        />
      </Box>
      <Typography variant="body2" color="textSecondary">
        Metered from {formatTime(invoice.from)} to {formatTime(invoice.to)}
      </Typography>
      <Table size="small" data-testid="invoice-lines">
        <TableHead>
          <TableRow>
            <TableCell>Service</TableCell>
            <TableCell align="right">Pods</TableCell>
            <TableCell align="right">vCPU-seconds</TableCell>
            <TableCell align="right">GiB-seconds</TableCell>
            <TableCell align="right">Amount</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {invoice.lines.length === 0 ? (
            <TableRow>
              <TableCell colSpan={5}>
                <Typography variant="body2" color="textSecondary" data-testid="invoice-no-lines">
                  No service has run this month yet.
                </Typography>
              </TableCell>
            </TableRow>
          ) : (
            invoice.lines.map(line => (
              <TableRow key={`${line.kind}/${line.name}`} data-testid="invoice-line" data-name={line.name}>
                <TableCell>
                  {line.kind} <em>{line.name}</em>
                </TableCell>
                <TableCell align="right">{line.pods}</TableCell>
                <TableCell align="right">{trim(line.vcpu_seconds)}</TableCell>
                <TableCell align="right">{trim(line.gib_seconds)}</TableCell>
                <TableCell align="right">{money(line.amount)}</TableCell>
              </TableRow>
            ))
          )}
          <TableRow>
            <TableCell colSpan={4}>Net</TableCell>
            <TableCell align="right" data-testid="invoice-net">
              {money(invoice.net)}
            </TableCell>
          </TableRow>
          <TableRow>
            <TableCell colSpan={4}>VAT {invoice.vat_percent}%</TableCell>
            <TableCell align="right" data-testid="invoice-vat">
              {money(invoice.vat)}
            </TableCell>
          </TableRow>
          <TableRow>
            <TableCell colSpan={4}>
              <strong>Gross</strong>
            </TableCell>
            <TableCell align="right" data-testid="invoice-gross">
              <strong>{money(invoice.gross)}</strong>
            </TableCell>
          </TableRow>
        </TableBody>
      </Table>
    </Box>
  );
}
