"""Phenotypes: what an ECG embedding knows about the heart. Pearson r of a ridge read-out of each CMR phenotype
(or, for an encoder fine-tuned on the phenotypes, of its own head) on the paired test subjects, checkpoints side by side with the demographics-only baseline and the paper's
published numbers, and the predicted-vs-true scatter behind any cell."""
import streamlit as st

from app import common, state
from app.figures import phenotype_scatter_figure
from cardio_core.metrics.phenotypes import PHENOTYPES
from cardio_core.queries.phenotypes import DEMOGRAPHICS_DISPLAY, published_table_iv
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL

st.title("Phenotypes from the ECG")
db = common.db()
review = common.review_mode()
probed = common.probed_weights(db)
if probed.empty:
    common.empty_state("No ECG encoder has a phenotype probe yet. It runs in every ECG analysis once a paired "
                       "ECG + CMR cohort is ingested (cardio ingest paired PATH, or cardio setup for the demo "
                       "cohort).")
    st.stop()

ids = probed["weights_id"].tolist()
names = dict(zip(probed["weights_id"], probed["display"]))
best = str(probed.sort_values("LV", ascending=False)["weights_id"].iloc[0])
state.init_widget("ph_models", "models", ids[:6], parse=lambda v: state.decode_list(v, ids))
state.keep_valid("ph_models", ids)
chosen = st.multiselect("ECG encoders to compare", ids, key="ph_models", format_func=lambda w: names.get(w, w))
state.sync(models=chosen)

st.subheader("Pearson r per phenotype (paired test subjects)")
table = common.table_iv(db, tuple(chosen), tuple(names.items()))
note = common.phenotype_note(db, DEMOGRAPHICS_MODEL)
common.explain("phenotype_r", n=table.attrs.get("n_test"), records="test subjects")
# r alone fits the screen for several encoders; the intervals sit one click away (and both are in each CSV)
r_columns = ["phenotype", *[c for c in table.columns if c.endswith(" r")]]
full_height = 35 * (len(table) + 1) + 3      # every phenotype row visible without scrolling
common.show_table(table[r_columns], "phenotype-r", key="ph_table", height=full_height)
with st.expander("95% bootstrap intervals", expanded=False):
    common.show_table(table[["phenotype", *[c for c in table.columns if c.endswith("95% CI")]]],
                      "phenotype-r-intervals", key="ph_intervals", height=full_height)
if note:
    st.caption(f"Demographics-only baseline: {note}")
if (probed["readout"] != "ridge probe").any():
    st.caption("Encoders marked 'own head' were fine-tuned on these phenotypes (a phenotype fine-tune job: MSE on "
               "standardised targets, the checkpoint chosen on validation r) and are read out by their own head; "
               "every other encoder by a ridge probe on its frozen embedding.")
st.caption("Read each encoder against the demographics-only column (gradient boosting on age, sex, height and "
           "weight alone, same subjects and splits): an r no higher than it means the embedding "
           "adds nothing that age, sex and body size do not already carry.")

with st.expander("Published group means (MMCL paper, Table IV)", expanded=True):
    common.show_table(published_table_iv(), "phenotype-r-published", key="ph_published")
    st.caption("UK Biobank, 6,007 test subjects, and the wall-thickness and strain phenotypes that a paired "
               "manifest does not carry: set your numbers beside these for their order, not their size. On the "
               "demo's synthetic cohort the numbers are not expected to match.")

st.subheader("Predicted against observed")
models = [*ids, DEMOGRAPHICS_MODEL]
model_names = {**names, DEMOGRAPHICS_MODEL: DEMOGRAPHICS_DISPLAY}
c1, c2 = st.columns(2)
state.init_widget("ph_model", "model", best, choices=models)
model = c1.selectbox("Model", models, key="ph_model", format_func=lambda w: model_names.get(w, w))
state.init_widget("ph_name", "phenotype", "LVEDV", choices=list(PHENOTYPES))
phenotype = c2.selectbox("Phenotype", list(PHENOTYPES), key="ph_name")
state.sync(model=model, phenotype=phenotype)
scatter = common.phenotype_scatter(db, model, phenotype)
if scatter["points"].empty:
    st.info(common.phenotype_note(db, model) or "No test predictions stored for this model.")
else:
    fig = phenotype_scatter_figure(scatter, phenotype, title=model_names.get(model, model), review=review)
    common.show_figure(fig, f"phenotype-{phenotype}-{model}", key="ph_scatter")
    st.caption("Each point is one test subject: its CMR-derived value across, the model's prediction from the "
               "ECG up. The dotted line is a perfect prediction; the red line is the least-squares fit, whose "
               "slope below 1 shows the read-out shrinking towards the mean.")
