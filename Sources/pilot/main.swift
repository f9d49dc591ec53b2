import PilotCLI

PilotMain.run()
