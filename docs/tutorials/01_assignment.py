# %% [markdown]
# # 01_assignment

# %%
print(1)
