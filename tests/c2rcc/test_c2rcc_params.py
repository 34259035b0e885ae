"""``c2rcc.msi`` parameters: SNAP's names, defaults, aliases, ranges; graphs; the valid-pixel language."""

from __future__ import annotations

import numpy as np
import pytest

from seasonal_c2rcc.c2rcc import C2rccMsiParams
from seasonal_c2rcc.c2rcc.expression import parse_expression
from seasonal_c2rcc.errors import ConfigError

#: The c2rcc node of the user's graphs/s2_c2rcc.xml (olley102/MarineHabitatMapping @ 104951ae),
#: with Read/Subset/Resample/Write trimmed to what the parser needs.
USER_GRAPH = """<graph id="Graph">
  <version>1.0</version>
  <node id="Read"><operator>Read</operator><parameters><file>$img1</file></parameters></node>
  <node id="c2rcc.msi">
    <operator>c2rcc.msi</operator>
    <sources><sourceProduct refid="Resample"/></sources>
    <parameters class="com.bc.ceres.binding.dom.XppDomElement">
      <validPixelExpression>B8 &gt; 0 &amp;&amp; B8 &lt; 0.1</validPixelExpression>
      <salinity>35.0</salinity>
      <temperature>15.0</temperature>
      <ozone>330.0</ozone>
      <press>1000.0</press>
      <elevation>0.0</elevation>
      <TSMfac>1.06</TSMfac>
      <TSMexp>0.942</TSMexp>
      <CHLexp>1.04</CHLexp>
      <CHLfac>21.0</CHLfac>
      <thresholdRtosaOOS>0.05</thresholdRtosaOOS>
      <thresholdAcReflecOos>0.1</thresholdAcReflecOos>
      <thresholdCloudTDown865>0.955</thresholdCloudTDown865>
      <netSet>C2X-COMPLEX-Nets</netSet>
      <outputAsRrs>true</outputAsRrs>
      <deriveRwFromPathAndTransmittance>false</deriveRwFromPathAndTransmittance>
      <useEcmwfAuxData>false</useEcmwfAuxData>
      <outputRtoa>false</outputRtoa>
      <outputRtosaGc>false</outputRtosaGc>
      <outputRtosaGcAann>false</outputRtosaGcAann>
      <outputRpath>false</outputRpath>
      <outputTdown>false</outputTdown>
      <outputTup>false</outputTup>
      <outputAcReflectance>true</outputAcReflectance>
      <outputRhown>true</outputRhown>
      <outputOos>false</outputOos>
      <outputKd>true</outputKd>
      <outputUncertainties>true</outputUncertainties>
      <atmosphericAuxDataPath/>
      <alternativeNNPath/>
    </parameters>
  </node>
  <node id="Write"><operator>Write</operator><parameters><file>$output</file></parameters></node>
</graph>"""


def test_defaults_are_snaps() -> None:
    p = C2rccMsiParams()
    assert p.validPixelExpression == "B8 > 0 && B8 < 0.1"
    assert (p.salinity, p.temperature, p.ozone, p.press, p.elevation) == (
        35.0,
        15.0,
        330.0,
        1000.0,
        0.0,
    )
    assert (p.TSMfac, p.TSMexp, p.CHLexp, p.CHLfac) == (1.06, 0.942, 1.04, 21.0)
    assert (p.thresholdRtosaOOS, p.thresholdAcReflecOos, p.thresholdCloudTDown865) == (
        0.05,
        0.1,
        0.955,
    )
    assert p.netSet == "C2RCC-Nets" and p.demName == "Copernicus 90m Global DEM"
    assert (
        p.outputRtoa
        and p.outputAcReflectance
        and p.outputRhown
        and p.outputKd
        and p.outputUncertainties
    )
    assert not (
        p.outputAsRrs or p.outputOos or p.useEcmwfAuxData or p.deriveRwFromPathAndTransmittance
    )
    assert not (
        p.outputRtosaGc or p.outputRtosaGcAann or p.outputRpath or p.outputTdown or p.outputTup
    )


def test_user_graph_configures_one_to_one() -> None:
    p = C2rccMsiParams.from_graph(USER_GRAPH)
    assert p.netSet == "C2X-COMPLEX-Nets" and p.outputAsRrs and not p.outputRtoa
    assert p.validPixelExpression == "B8 > 0 && B8 < 0.1"
    assert p.elevation == 0.0  # equal to the default, so SNAP does not range-check it
    assert p.atmosphericAuxDataPath is None and p.alternativeNNPath is None
    assert p == C2rccMsiParams(netSet="C2X-COMPLEX-Nets", outputAsRrs=True, outputRtoa=False)


def test_unknown_element_is_an_error_like_gpt() -> None:
    bad = USER_GRAPH.replace("<outputRtoa>false</outputRtoa>", "<outputRtosa>true</outputRtosa>")
    with pytest.raises(ConfigError, match="Unknown element 'outputRtosa'"):
        C2rccMsiParams.from_graph(bad)
    with pytest.raises(ConfigError, match="Unknown element"):
        C2rccMsiParams.from_mapping({"salinty": 30})


def test_java_field_names_are_accepted() -> None:
    p = C2rccMsiParams.from_mapping({"TSMfakBpart": "1.72", "TSMfakBwit": "3.1", "CHLfak": "20"})
    assert (p.TSMfac, p.TSMexp, p.CHLfac) == (1.72, 3.1, 20.0)
    with pytest.raises(ConfigError, match="twice"):
        C2rccMsiParams.from_mapping({"TSMfac": "1", "TSMfakBpart": "2"})


@pytest.mark.parametrize(
    ("name", "value"),
    [("press", 1100.0), ("press", 800.0), ("salinity", 43.0), ("temperature", -1.0), ("ozone", 0.0),
     ("elevation", 9000.0)],
)  # fmt: skip
def test_ranges_are_checked_like_snap(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' is out of range"):
        C2rccMsiParams(**{name: value})


def test_value_sets_and_types() -> None:
    with pytest.raises(ConfigError, match="netSet"):
        C2rccMsiParams(netSet="C2RCC")
    with pytest.raises(ConfigError, match="demName"):
        C2rccMsiParams(demName="SRTM")
    with pytest.raises(ConfigError, match="not a number"):
        C2rccMsiParams.from_mapping({"salinity": "salty"})
    with pytest.raises(ConfigError, match="true/false"):
        C2rccMsiParams.from_mapping({"outputOos": "yes"})
    with pytest.raises(ConfigError, match="valid-pixel"):
        C2rccMsiParams(validPixelExpression="B8 > ")


def test_placeholders_are_substituted_or_rejected() -> None:
    graph = USER_GRAPH.replace("<salinity>35.0</salinity>", "<salinity>${sal}</salinity>")
    assert C2rccMsiParams.from_graph(graph, variables={"sal": "30"}).salinity == 30.0
    with pytest.raises(ConfigError, match="unresolved placeholder"):
        C2rccMsiParams.from_graph(graph)


def test_graph_must_have_one_c2rcc_node() -> None:
    with pytest.raises(ConfigError, match="exactly one c2rcc.msi node"):
        C2rccMsiParams.from_graph("<graph><node id='a'><operator>Read</operator></node></graph>")
    with pytest.raises(ConfigError, match="not valid XML"):
        C2rccMsiParams.from_graph("<graph>")


def _eval(text: str, **bands: list[float]) -> list[bool]:
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in bands.items()}
    shape = next(iter(arrays.values())).shape if arrays else (1,)
    return parse_expression(text).evaluate(arrays, shape).tolist()


def test_valid_pixel_expressions() -> None:
    b8 = [0.0, 0.05, 0.1, 0.2, float("nan")]
    assert _eval("B8 > 0 && B8 < 0.1", B8=b8) == [False, True, False, False, False]
    assert _eval("B8 > 0 and B8 < 0.1", B8=b8) == [False, True, False, False, False]
    assert _eval("!(B8 >= 0.1) || B8 == 0.0", B8=b8) == [True, True, False, False, True]
    # bands are float32 compared in double, as SNAP's evalD: float32(0.2) != 0.2
    assert _eval("B8 == 0.2", B8=b8) == [False] * 5
    assert _eval("not B8 > 0", B8=b8) == [True, False, False, False, True]
    # the coastal expression of the ISPRA scripts (doc 1.1), abbreviated
    ispra = "B1 > 0 and B8 < 0.35 and B11 < 0.03 and B8 < (B3 + B8 / 3) and B8 < (B2 + B8 / 3)"
    assert _eval(
        ispra, B1=[0.1, 0.1], B2=[0.08, 0.08], B3=[0.07, 0.07], B8=[0.04, 0.3], B11=[0.01, 0.01]
    ) == [True, False]
    assert _eval("abs(B8 - 0.05) < 1e-3 ? true : false", B8=b8) == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert _eval("if B8 > 0.15 then 1 else 0", B8=b8) == [False, False, False, True, False]
    assert _eval("true") == [True]
    assert parse_expression("B8 > 0 && B4 < 0.2").bands == {"B8", "B4"}
    with pytest.raises(ConfigError):
        parse_expression("B8 >> 1")
    with pytest.raises(ConfigError):
        parse_expression("pow(B8)")
    with pytest.raises(ConfigError, match="B9"):
        parse_expression("B9 > 0").evaluate({"B8": np.zeros(1)}, (1,))
