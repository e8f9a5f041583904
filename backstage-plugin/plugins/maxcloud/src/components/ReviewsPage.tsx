import { Link, Progress, ResponseErrorPanel, Table, TableColumn } from '@backstage/core-components';
import Typography from '@material-ui/core/Typography';
import { Order } from '@maxcloud/backstage-plugin-maxcloud-common';
import { formatTime, LiveIndicator, PullRequestLink } from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData } from './MaxcloudProvider';

/** `reviews`: the tenant's orders whose pull requests wait for a review. */
export function ReviewsPage() {
  const links = useMaxcloudLinks();
  const orders = useLiveData(
    client => client.orders({ review: 'pending' }),
    [],
    event => event.type === 'order',
  );
  if (orders.error && !orders.value) return <ResponseErrorPanel error={orders.error} />;
  if (!orders.value) return <Progress />;
  const columns: TableColumn<Order>[] = [
    {
      title: 'Order',
      render: o => (
        <Link to={links.order(o.id)} data-testid="review-order-link">
          {o.action} {o.kind} {o.name}
        </Link>
      ),
    },
    { title: 'Requested by', field: 'requester' },
    { title: 'At', render: o => formatTime(o.created_at) },
    { title: 'Pull request', render: o => <PullRequestLink order={o} /> },
    {
      title: 'Reviewers',
      render: o =>
        o.pull_request?.required_reviewers?.length ? o.pull_request.required_reviewers.join(', ') : 'any admin',
    },
  ];
  return (
    <div data-testid="reviews">
      <Table<Order>
        title={
          <span>
            Waiting for review <LiveIndicator />
          </span>
        }
        options={{ paging: false, search: false, padding: 'dense' }}
        columns={columns}
        data={orders.value.map(o => ({ ...o }))}
        emptyContent={
          <Typography variant="body2" style={{ padding: 16 }}>
            No order waits for a review.
          </Typography>
        }
      />
    </div>
  );
}
