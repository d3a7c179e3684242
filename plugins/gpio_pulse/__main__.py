import sys

from telegraf_bridge.plugins.gpio_pulse.plugin import main

sys.exit(main())
