import { useMemo } from 'react';
import { Link, Progress, ResponseErrorPanel, Table, TableColumn } from '@backstage/core-components';
import Typography from '@material-ui/core/Typography';
import { Order, Resource } from '@maxcloud/backstage-plugin-maxcloud-common';
import { LiveIndicator, OrderState, PullRequestLink, ResourceStatus, ReviewState } from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData } from './MaxcloudProvider';

interface Row {
  id: string;
  resource: Resource;
  order?: Order;
}

/** `services`: the tenant's resources with status, URL, pull request and review state, live. */
export function ServicesPage() {
  const links = useMaxcloudLinks();
  const resources = useLiveData(client => client.resources(), [], () => true);
  const orders = useLiveData(client => client.orders(), [], event => event.type === 'order');

  const rows = useMemo<Row[]>(() => {
    const byId = new Map((orders.value ?? []).map(o => [o.id, o]));
    return (resources.value ?? []).map(resource => ({
      id: resource.id,
      resource,
      order: byId.get(resource.order_id),
    }));
  }, [resources.value, orders.value]);

  if (resources.error && !resources.value) return <ResponseErrorPanel error={resources.error} />;
  if (!resources.value) return <Progress />;

  const columns: TableColumn<Row>[] = [
    { title: 'Kind', field: 'resource.kind' },
    {
      title: 'Name',
      field: 'resource.name',
      highlight: true,
      render: row => (
        <Link to={links.service(row.resource.kind, row.resource.name)} data-testid="service-link">
          {row.resource.name}
        </Link>
      ),
    },
    {
      title: 'Status',
      field: 'resource.status',
      render: row => <ResourceStatus status={row.resource.status} />,
    },
    {
      title: 'URL',
      field: 'resource.url',
      render: row =>
        row.resource.url ? (
          <Link to={row.resource.url} data-testid="service-url">
            {row.resource.url}
          </Link>
        ) : (
          <Typography variant="body2" color="textSecondary">
            not yet served
          </Typography>
        ),
    },
    {
      title: 'Last order',
      render: row =>
        row.order ? (
          <Link to={links.order(row.order.id)} data-testid="service-order-link">
            <OrderState state={row.order.state} testId="service-order-state" />
          </Link>
        ) : (
          <Link to={links.order(row.resource.order_id)}>order</Link>
        ),
    },
    {
      title: 'Pull request',
      render: row => (row.order ? <PullRequestLink order={row.order} /> : '—'),
    },
    {
      title: 'Review',
      render: row => <ReviewState pr={row.order?.pull_request} />,
    },
  ];

  return (
    <div data-testid="services">
      <Table<Row>
        title={
          <span>
            My services <LiveIndicator />
          </span>
        }
        options={{ paging: rows.length > 20, pageSize: 20, search: true, padding: 'dense' }}
        columns={columns}
        data={rows}
        emptyContent={
          <Typography variant="body2" style={{ padding: 16 }} data-testid="services-empty">
            Nothing yet: order a service from the <Link to={links.marketplace()}>marketplace</Link>.
          </Typography>
        }
      />
    </div>
  );
}
