import { ItemCardGrid, ItemCardHeader, LinkButton, Progress, ResponseErrorPanel } from '@backstage/core-components';
import Card from '@material-ui/core/Card';
import CardActions from '@material-ui/core/CardActions';
import CardContent from '@material-ui/core/CardContent';
import CardMedia from '@material-ui/core/CardMedia';
import Chip from '@material-ui/core/Chip';
import Typography from '@material-ui/core/Typography';
import { CatalogEntry } from '@maxcloud/backstage-plugin-maxcloud-common';
import { formatPrice, mergePolicyLabel, priceDetails, priceOf } from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData } from './MaxcloudProvider';

/** The service types of the catalog, one card each, with an Order button. */
export function MarketplacePage() {
  const catalog = useLiveData(client => client.catalog(), [], () => false);
  if (catalog.error && !catalog.value) return <ResponseErrorPanel error={catalog.error} />;
  if (!catalog.value) return <Progress />;
  return (
    <ItemCardGrid data-testid="marketplace">
      {catalog.value.map(entry => (
        <ServiceTypeCard key={entry.kind} entry={entry} />
      ))}
    </ItemCardGrid>
  );
}

function ServiceTypeCard({ entry }: { entry: CatalogEntry }) {
  const links = useMaxcloudLinks();
  const price = priceOf(entry);
  const policy = entry.merge_policy?.create;
  return (
    <Card data-testid={`service-type-${entry.kind}`} aria-label={`Service type ${entry.kind}`}>
      <CardMedia>
        <ItemCardHeader title={entry.kind} subtitle={entry.api_version} />
      </CardMedia>
      <CardContent>
        <Typography variant="body2" paragraph>
          {entry.description}
        </Typography>
        {price ? (
          <Typography variant="body2" data-testid="price" paragraph>
            <strong>{formatPrice(price)}</strong>
            <Typography component="span" variant="caption" display="block" color="textSecondary">
              at the defaults: {priceDetails(price)}
            </Typography>
          </Typography>
        ) : (
          <Typography variant="body2" color="textSecondary" data-testid="price" paragraph>
            No price estimate
          </Typography>
        )}
        <Chip
          size="small"
          label={mergePolicyLabel(policy)}
          color={policy === 'review' ? 'secondary' : 'default'}
          data-testid="merge-policy"
        />
      </CardContent>
      <CardActions>
        <LinkButton
          color="primary"
          variant="contained"
          to={links.orderForm(entry.kind)}
          aria-label={`Order ${entry.kind}`}
        >
          Order
        </LinkButton>
      </CardActions>
    </Card>
  );
}
