import sys

from telegraf_bridge.plugins.iotflow.plugin import main

sys.exit(main())
