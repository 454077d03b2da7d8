from argparse import ArgumentParser
from typing import Any

from django.apps import AppConfig
from django.core.management.base import BaseCommand

from carehub.pathways.subcommands import DefinitionFor


class SimulationConfig(AppConfig):
    """The pathway simulator on carehub's own rules: `manage.py pathway simulate`."""

    name = "carehub.simulation"
    label = "simulation"
    verbose_name = "Pathway simulator"

    def ready(self) -> None:
        from carehub.pathways.subcommands import register_pathway_subcommand

        register_pathway_subcommand(
            "simulate",
            help="Run a cohort through a pathway on a fake clock; write a JSON and HTML report.",
            add_arguments=_add_arguments,
            run=_run,
        )


# The simulator (and pygal, for its report) is imported when the command runs, not by every
# process that loads the apps.
def _add_arguments(parser: ArgumentParser) -> None:
    from carehub.simulation.simulator import add_simulate_arguments

    add_simulate_arguments(parser)


def _run(command: BaseCommand, options: dict[str, Any], definition_for: DefinitionFor) -> object:
    from carehub.simulation.simulator import run_simulate

    return run_simulate(command, options, definition_for)
