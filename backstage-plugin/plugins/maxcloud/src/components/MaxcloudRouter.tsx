import { Content, Header, Page } from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import FormControl from '@material-ui/core/FormControl';
import InputLabel from '@material-ui/core/InputLabel';
import MenuItem from '@material-ui/core/MenuItem';
import Select from '@material-ui/core/Select';
import Tab from '@material-ui/core/Tab';
import Tabs from '@material-ui/core/Tabs';
import Alert from '@material-ui/lab/Alert';
import { Link as RouterLink, Route, Routes, useLocation, useResolvedPath } from 'react-router-dom';
import { MaxcloudLinksProvider, useMaxcloudLinks } from './links';
import { CostsPage } from './CostsPage';
import { MarketplacePage } from './MarketplacePage';
import { MaxcloudProvider, useMaxcloud } from './MaxcloudProvider';
import { EditServicePage, OrderFormPage } from './OrderFormPage';
import { OrderPage } from './OrderPage';
import { ReviewsPage } from './ReviewsPage';
import { ServiceDetailPage } from './ServiceDetailPage';
import { ServicesPage } from './ServicesPage';

/**
 * The max-cloud page's content, the same in both frontend systems: the marketplace, order forms, orders,
 * the tenant's services, the review queue and the organisation's costs and limits, on routes below the page's
 * path.
 */
export function MaxcloudRouter() {
  const base = useResolvedPath('.').pathname;
  return (
    <MaxcloudProvider>
      <MaxcloudLinksProvider base={base}>
        <Navigation base={base} />
        <Box mt={3}>
          <Membership>
            <Routes>
              <Route index element={<MarketplacePage />} />
              <Route path="order/:kind" element={<OrderFormPage />} />
              <Route path="orders/:id" element={<OrderPage />} />
              <Route path="services" element={<ServicesPage />} />
              <Route path="services/:kind/:name" element={<ServiceDetailPage />} />
              <Route path="services/:kind/:name/edit" element={<EditServicePage />} />
              <Route path="reviews" element={<ReviewsPage />} />
              <Route path="costs" element={<CostsPage />} />
              <Route path="*" element={<Alert severity="warning">This max-cloud page does not exist.</Alert>} />
            </Routes>
          </Membership>
        </Box>
      </MaxcloudLinksProvider>
    </MaxcloudProvider>
  );
}

function Membership(props: { children: JSX.Element }) {
  const { identity } = useMaxcloud();
  if (identity && identity.tenants.length === 0) {
    return (
      <Alert severity="warning" data-testid="no-tenant">
        {identity.user} belongs to no max-cloud organisation. Ask an administrator of your organisation to add
        you.
      </Alert>
    );
  }
  return props.children;
}

function Navigation({ base }: { base: string }) {
  const links = useMaxcloudLinks();
  const { pathname } = useLocation();
  const rest = pathname.startsWith(base) ? pathname.slice(base.length).replace(/^\/+/, '') : pathname;
  let tab: string | false = false;
  if (rest === '' || rest.startsWith('order/')) tab = 'marketplace';
  else if (rest.startsWith('services')) tab = 'services';
  else if (rest.startsWith('reviews')) tab = 'reviews';
  else if (rest.startsWith('costs')) tab = 'costs';
  return (
    <Box display="flex" alignItems="flex-end" justifyContent="space-between" flexWrap="wrap">
      <Tabs value={tab} indicatorColor="primary" textColor="primary" aria-label="max-cloud views">
        <Tab value="marketplace" label="Marketplace" component={RouterLink} to={links.marketplace()} />
        <Tab value="services" label="My services" component={RouterLink} to={links.services()} />
        <Tab value="reviews" label="Reviews" component={RouterLink} to={links.reviews()} />
        <Tab value="costs" label="Costs & limits" component={RouterLink} to={links.costs()} />
      </Tabs>
      <TenantSelect />
    </Box>
  );
}

function TenantSelect() {
  const { identity, tenant, setTenant } = useMaxcloud();
  if (!identity || identity.tenants.length < 2 || !tenant) return null;
  return (
    <FormControl size="small" variant="outlined" style={{ minWidth: 200 }}>
      <InputLabel id="maxcloud-tenant-label">Organisation</InputLabel>
      <Select
        labelId="maxcloud-tenant-label"
        label="Organisation"
        value={tenant}
        onChange={e => setTenant(String(e.target.value))}
        data-testid="tenant-select"
      >
        {identity.tenants.map(t => (
          <MenuItem key={t.slug} value={t.slug}>
            {t.slug} ({t.role})
          </MenuItem>
        ))}
      </Select>
    </FormControl>
  );
}

/** The page's content inside a Backstage content area (new frontend system: the app draws the header). */
export function MaxcloudContent() {
  return (
    <Content>
      <MaxcloudRouter />
    </Content>
  );
}

/** The whole page for legacy apps, with its own header. */
export function MaxcloudLegacyPage() {
  return (
    <Page themeId="tool">
      <Header
        title="max-cloud"
        subtitle="Order serverless containers, databases, registries and DNS records; follow them live"
      />
      <Content>
        <MaxcloudRouter />
      </Content>
    </Page>
  );
}
