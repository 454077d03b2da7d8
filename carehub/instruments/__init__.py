"""The instrument library: versioned questionnaire definitions and their exact scoring.

Definitions are YAML files in `library/` (`KEY.vVERSION.yaml`); a published version is
immutable. The pure modules (`definition`, `loader`, `scoring`, `texts`) import no Django and
can be used anywhere; `registry` serves the library inside carehub. See README.md in this
package.
"""
