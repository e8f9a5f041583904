import { useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import useAsync from 'react-use/esm/useAsync';
import { InfoCard, Link, Progress, ResponseErrorPanel } from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import Button from '@material-ui/core/Button';
import CircularProgress from '@material-ui/core/CircularProgress';
import Grid from '@material-ui/core/Grid';
import TextField from '@material-ui/core/TextField';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import { Form } from '@rjsf/material-ui';
import validator from '@rjsf/validator-ajv8';
import type { ErrorSchema, RJSFSchema } from '@rjsf/utils';
import type { IChangeEvent } from '@rjsf/core';
import {
  CatalogEntry,
  MaxcloudApiError,
  Order,
  PriceEstimate,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { errorText, formatPrice, mergePolicyLabel, priceDetails, priceOf } from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData, useMaxcloud } from './MaxcloudProvider';
import {
  errorSchemaAt,
  fieldMessage,
  mergeErrorSchemas,
  formSchema,
  formUiSchema,
  newIdempotencyKey,
  orderParameters,
  parameterPath,
  RESOURCE_NAME_PATTERN,
} from './orderForm';

/** `order/:kind`: the order form of one service type, generated from its JSON Schema. */
export function OrderFormPage() {
  const { kind = '' } = useParams();
  const navigate = useNavigate();
  const links = useMaxcloudLinks();
  const entry = useLiveData(client => client.catalogEntry(kind), [kind], () => false);
  if (entry.error && !entry.value) return <ResponseErrorPanel error={entry.error} />;
  if (!entry.value) return <Progress />;
  return (
    <OrderForm
      key={entry.value.kind}
      entry={entry.value}
      onOrdered={order => navigate(links.order(order.id))}
    />
  );
}

/**
 * `services/:kind/:name/edit`: the order form of the type, prefilled with the resource's current spec; its
 * order is an `update` of the resource.
 */
export function EditServicePage() {
  const { kind = '', name = '' } = useParams();
  const navigate = useNavigate();
  const links = useMaxcloudLinks();
  const { client } = useMaxcloud();
  // Read once: the form must not change under the user's hands while they edit it.
  const loaded = useAsync(async () => {
    const [entry, resources] = await Promise.all([client.catalogEntry(kind), client.resources()]);
    const resource = resources.find(r => r.kind.toLowerCase() === kind.toLowerCase() && r.name === name);
    return { entry, resource };
  }, [client, kind, name]);
  if (loaded.error) return <ResponseErrorPanel error={loaded.error} />;
  if (!loaded.value) return <Progress />;
  const { entry, resource } = loaded.value;
  if (!resource) {
    return (
      <Alert severity="info" data-testid="service-missing">
        Your organisation has no {kind} called {name}. <Link to={links.services()}>All your services</Link>
      </Alert>
    );
  }
  if (resource.status === 'deleting') {
    return (
      <Alert severity="warning" data-testid="service-deleting">
        {resource.kind} {resource.name} is being deleted and cannot be changed.{' '}
        <Link to={links.service(resource.kind, resource.name)}>Back to the {resource.kind}</Link>
      </Alert>
    );
  }
  return (
    <OrderForm
      key={`${entry.kind}/${resource.name}`}
      entry={entry}
      action="update"
      initial={{ name: resource.name, parameters: resource.spec }}
      onOrdered={order => navigate(links.order(order.id))}
    />
  );
}

/** What an order form starts with: the resource's name and its current parameters (its `spec`). */
export interface OrderFormInitial {
  name: string;
  parameters?: Record<string, unknown>;
}

/**
 * The order form: a name and the type's parameters; the order service judges, its errors show inline.
 * `action` `update` changes an existing resource: the form starts with `initial`, and the name is fixed.
 */
export function OrderForm(props: {
  entry: CatalogEntry;
  onOrdered(order: Order): void;
  action?: 'create' | 'update';
  initial?: OrderFormInitial;
}) {
  const { entry, onOrdered, initial } = props;
  const action = props.action ?? 'create';
  const updating = action === 'update';
  const { client } = useMaxcloud();
  const links = useMaxcloudLinks();
  const schema = useMemo(() => formSchema(entry), [entry]);
  const uiSchema = useMemo(() => formUiSchema(entry), [entry]);
  const [name, setName] = useState(initial?.name ?? '');
  const [nameError, setNameError] = useState<string>();
  const [formData, setFormData] = useState<Record<string, unknown> | undefined>(initial?.parameters);
  const [extraErrors, setExtraErrors] = useState<ErrorSchema | undefined>(undefined);
  const [error, setError] = useState<string>();
  const [submitting, setSubmitting] = useState(false);
  // One key per attempt; kept when the answer got lost, so retrying cannot order twice.
  const attempt = useRef<string | undefined>(undefined);
  const price = priceOf(entry);
  const estimate = useEstimate(entry, schema, formData);
  const shownPrice = estimate ?? price;

  const submit = async ({ formData: data }: IChangeEvent<Record<string, unknown>>) => {
    setError(undefined);
    setExtraErrors(undefined);
    setNameError(undefined);
    if (!name) {
      setNameError('A name is required');
      return;
    }
    if (!RESOURCE_NAME_PATTERN.test(name)) {
      setNameError("Use lowercase letters, digits and '-', starting and ending with a letter or digit");
      return;
    }
    attempt.current ??= newIdempotencyKey();
    setSubmitting(true);
    try {
      const order = await client.createOrder(
        { kind: entry.kind, name, action, parameters: orderParameters(data ?? {}, schema) as any },
        { idempotencyKey: attempt.current },
      );
      onOrdered(order);
    } catch (e) {
      if (!(e instanceof MaxcloudApiError)) {
        setError(`The order could not be sent: ${errorText(e)}`);
        return;
      }
      // The order service answered: the next attempt is a new order.
      attempt.current = undefined;
      let placed: ErrorSchema | undefined;
      for (const problem of e.fields) {
        const path = parameterPath(problem.field);
        if (problem.field === 'name') {
          setNameError(fieldMessage('name', problem.message));
        } else if (path) {
          placed = mergeErrorSchemas(placed, errorSchemaAt(path, fieldMessage(problem.field, problem.message)));
        }
      }
      setExtraErrors(placed);
      setError(e.message);
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <Grid container spacing={3}>
      <Grid item xs={12} md={8}>
        <InfoCard
          title={updating ? `Change ${entry.kind} ${name}` : `Order ${entry.kind}`}
          subheader={entry.description}
        >
          <form
            noValidate
            onSubmit={e => e.preventDefault()}
            aria-label="Resource name"
          >
            <TextField
              id="maxcloud-order-name"
              label="Name"
              required
              fullWidth
              variant="outlined"
              margin="normal"
              value={name}
              onChange={e => {
                if (updating) return;
                setName(e.target.value);
                setNameError(undefined);
              }}
              error={!!nameError}
              helperText={
                nameError ??
                (updating
                  ? `The name of a ${entry.kind} cannot change`
                  : `Name of the ${entry.kind}: lowercase letters, digits and '-', unique among your ${entry.plural}`)
              }
              InputProps={{ readOnly: updating }}
              inputProps={{ 'data-testid': 'order-name', 'aria-readonly': updating || undefined }}
            />
          </form>
          <Box data-testid="order-form">
            <Form
              schema={schema}
              uiSchema={uiSchema}
              formData={formData}
              validator={validator}
              extraErrors={extraErrors}
              showErrorList={false}
              focusOnFirstError
              disabled={submitting}
              onChange={e => setFormData(e.formData)}
              onSubmit={submit}
              onError={() => setError('Some values are not valid: see the fields marked below.')}
            >
              {error ? (
                <Box mt={2} mb={2}>
                  <Alert severity="error" data-testid="order-error">
                    {error}
                  </Alert>
                </Box>
              ) : null}
              <Box mt={2} display="flex" alignItems="center" style={{ gap: 16 }}>
                <Button
                  type="submit"
                  color="primary"
                  variant="contained"
                  disabled={submitting}
                  data-testid="order-submit"
                >
                  {updating ? 'Place change order' : 'Place order'}
                </Button>
                {submitting ? <CircularProgress size={24} /> : null}
                {updating ? (
                  <Link to={links.service(entry.kind, name)}>Back to the {entry.kind}</Link>
                ) : (
                  <Link to={links.marketplace()}>Back to the marketplace</Link>
                )}
              </Box>
            </Form>
          </Box>
        </InfoCard>
      </Grid>
      <Grid item xs={12} md={4}>
        <InfoCard title="What happens">
          <Typography variant="body2" paragraph>
            Your order becomes a pull request in your organisation's Git repository
            {updating ? ' that changes the resource\'s file' : ''}. By default{' '}
            {updating ? 'a change of this type' : 'this type'}{' '}
            <strong>{mergePolicyLabel(entry.merge_policy?.[action])}</strong>
            {entry.merge_policy?.[action] === 'review'
              ? ': it is applied once a reviewer approves the pull request.'
              : ': the pull request is merged at once and applied by Flux.'}{' '}
            Your organisation may ask for reviews of more types.
          </Typography>
          {shownPrice ? (
            <Typography variant="body2" paragraph data-testid="order-price">
              Estimated price {estimate ? 'with these parameters' : 'at the defaults'}:{' '}
              <strong>{formatPrice(shownPrice)}</strong>
              <Typography component="span" variant="caption" display="block" color="textSecondary">
                {priceDetails(shownPrice)}
              </Typography>
            </Typography>
          ) : null}
          {entry.rules?.length ? (
            <>
              <Typography variant="subtitle2">Rules the order service checks</Typography>
              <ul>
                {entry.rules.map(rule => (
                  <li key={`${rule.path}:${rule.rule}`}>
                    <Typography variant="body2">
                      {rule.path ? <code>{rule.path}</code> : null}
                      {rule.path ? ': ' : null}
                      {rule.message}
                    </Typography>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </InfoCard>
      </Grid>
    </Grid>
  );
}

/**
 * The price of the parameters as they are in the form (the order service's estimate, asked a moment after
 * the last change); undefined while they are not valid yet or the type has no price.
 */
function useEstimate(
  entry: CatalogEntry,
  schema: RJSFSchema,
  parameters: Record<string, unknown> | undefined,
) {
  const { client } = useMaxcloud();
  const [estimate, setEstimate] = useState<PriceEstimate | undefined>(undefined);
  const asked = useRef(0);
  const priced = !!priceOf(entry);
  const required = ((entry.schema as { required?: string[] }).required ?? []) as string[];
  const complete = !!parameters && required.every(k => parameters[k] !== undefined && parameters[k] !== '');
  useEffect(() => {
    const ask = ++asked.current;
    if (!priced || !parameters || !complete) {
      setEstimate(undefined);
      return undefined;
    }
    const timer = setTimeout(() => {
      client.estimate(entry.kind, orderParameters(parameters, schema) as Record<string, unknown>).then(
        price => ask === asked.current && setEstimate(price),
        () => ask === asked.current && setEstimate(undefined),
      );
    }, 400);
    return () => clearTimeout(timer);
  }, [client, entry.kind, schema, parameters, priced, complete]);
  return estimate;
}
