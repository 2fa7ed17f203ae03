// The types a generated dashboard is checked against, all from Grafana's own @grafana/schema
// (generated from the CUE schemas Grafana validates dashboards and panels with), at the
// version pinned in package.json: Grafana 10.4, whose dashboards are schemaVersion 39.
//
// tests/test_slo_grafana.py writes each dashboard as TypeScript, every panel checked with
// `satisfies` against the type of its kind, and runs `tsc --strict --noEmit` on it: an
// unknown key (excess property), a missing required one or a value of the wrong type fails.
import type * as schema from '@grafana/schema';
import type * as prometheus from '@grafana/schema/dist/esm/raw/composable/prometheus/dataquery/x/PrometheusDataQuery_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// JSON has no TypeScript enums: a string enum's value in JSON is its string, so each string
// enum becomes the union of its values (numeric enums stay as they are: a number outside
// one is still an error).
export type Json<T> = 0 extends 1 & T
  ? T
  : T extends string
    ? `${T}`
    : T extends readonly (infer U)[]
      ? Json<U>[]
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

// Grafana fills a panel's options and its field config's `custom` from the plugin's defaults
// (the schema's defaults) wherever a key is missing: those keys are optional in a dashboard.
type Defaulted<T> = T extends readonly (infer U)[]
  ? Defaulted<U>[]
  : T extends object
    ? { [K in keyof T]?: Defaulted<T[K]> }
    : T;

// What an override may set: each property of the field config, by its name, and each of the
// panel's custom field options, as `custom.<name>` (how Grafana resolves an override's id).
type Settable<Custom> = {
  [K in Exclude<keyof schema.FieldConfig, 'custom'>]-?: schema.FieldConfig[K];
} & { [K in keyof Custom & string as `custom.${K}`]-?: Custom[K] };
type Property<Custom> = {
  [Id in keyof Settable<Custom>]: { id: Id; value: Settable<Custom>[Id] };
}[keyof Settable<Custom>];

type FieldConfigSource<Custom> = {
  defaults: Omit<schema.FieldConfig, 'custom'> & { custom?: Defaulted<Custom> };
  overrides: { matcher: schema.MatcherConfig; properties: Property<Custom>[] }[];
};

type PanelOf<Kind extends string, Options, Custom> = Omit<
  schema.Panel,
  'type' | 'options' | 'fieldConfig' | 'targets'
> & {
  type: Kind;
  options: Defaulted<Options>;
  fieldConfig: FieldConfigSource<Custom>;
  targets: prometheus.PrometheusDataQuery[];
};

export type Dashboard = Json<schema.Dashboard>;
export type RowPanel = Json<schema.RowPanel>;
export type TimeSeriesPanel = Json<PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>>;
export type StatPanel = Json<PanelOf<'stat', stat.Options, never>>;
export type TablePanel = Json<PanelOf<'table', table.Options, table.FieldConfig>>;
